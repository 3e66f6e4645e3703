"""JNLI (JGLUE): 3-way natural language inference. Harness tasks ``jnli-1.1-*`` and ``jnli-1.3-*`` (spec 3.2).

* 1.1 [published leaderboard]: English label words ``entailment/contradiction/neutral``, plain random
  shots, metrics acc and acc_norm; prompt versions 0.2-0.5 (0.6 did not exist for 1.1).
* 1.3 [harness HEAD]: Japanese label words ``含意/矛盾/中立``, shots stratified by label (spec 2.2),
  BalancedMultipleChoiceTask metrics (acc, acc_norm, balanced_acc, mcc, macro_f1); prompt versions 0.2-0.6.

The label words are the continuations, with no leading space, in label-id order
(entailment=0, contradiction=1, neutral=2). JGLUE's files hold the label as a string, the Hub's
parquet as its ClassLabel id; both map to the same id. ``shared/data`` has no JNLI train file, so
a local run without one draws its shots from ``test`` (recorded as the pool in the results).
"""

from __future__ import annotations

from kensa.data import DatasetSpec
from kensa.tasks.base import MultipleChoiceTask
from kensa.tasks.prompts import PromptTemplate, alpaca, llama2, rinna_bilingual, rinna_sft
from kensa.tasks.registry import register

LABELS = ("entailment", "contradiction", "neutral")
"""JGLUE's label strings, in ClassLabel id order."""
WORDS = {"1.1": LABELS, "1.3": ("含意", "矛盾", "中立")}

DATASET = DatasetSpec(
    name="JGLUE JNLI",
    local={"train": "jglue/jnli/train-v*.json", "validation": "jglue/jnli/valid-v*.json",
           "test": "jglue/jnli/test-v*.json"},
    hub_id="shunk031/JGLUE",
    hub_kwargs={"revision": "refs/convert/parquet", "data_dir": "JNLI"},
    fields={"sentence_pair_id": (str, int), "sentence1": str, "sentence2": str, "label": (str, int)},
    id_field="sentence_pair_id",
)


def label_id(row) -> int:
    label = row["label"]
    return LABELS.index(label) if isinstance(label, str) else label


def check_label(row):
    label = row["label"]
    if isinstance(label, str) and label not in LABELS or isinstance(label, int) and not 0 <= label < 3:
        return "label", f"{label!r} is not one of {', '.join(LABELS)} (or 0..2)"
    return None


def templates(version: str) -> tuple[PromptTemplate, ...]:
    e, c, n = WORDS[version]
    listed = f"{e}\n{c}\n{n}"
    out = [
        PromptTemplate(
            "0.2", name="fintan",
            description=f"前提と仮説の関係を{e}、{c}、{n}の中から回答してください。\n\n制約:\n"
            f"- 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合は{e}と出力\n"
            f"- 前提と仮説が両立しえない場合は{c}と出力\n"
            f"- そのいずれでもない場合は{n}と出力\n\n",
            text="前提:{premise}\n仮説:{hypothesis}\n関係:",
            target="{answer}",
        ),
        alpaca("0.3", f"与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n{listed}",
               "前提：{premise}\n仮説：{hypothesis}"),
        rinna_sft("0.4", f"与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：<NL>{e}<NL>{c}<NL>{n}",
                  "前提：{premise}<NL>仮説：{hypothesis}"),
        rinna_bilingual("0.5", f"与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：\n{listed}",
                        "前提：{premise}\n仮説：{hypothesis}"),
    ]
    if version != "1.1":  # 0.6 (llama2) came after the 1.1 runs
        out.append(llama2("0.6", f"与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n{listed}",
                          "前提：{premise}\n仮説：{hypothesis}"))
    return tuple(out)


def make_task(version: str) -> MultipleChoiceTask:
    words = WORDS[version]

    def view(row) -> dict[str, str]:
        return {"premise": row["sentence1"], "hypothesis": row["sentence2"], "answer": words[label_id(row)]}

    balanced = version != "1.1"
    return MultipleChoiceTask(
        name="jnli",
        version=version,
        suite="jglue",
        dataset=DATASET,
        eval_split="validation",
        fewshot_split="train",
        fewshot_fallback=("test",),
        num_fewshot=3,
        templates=templates(version),
        view=view,
        choices=lambda row: list(words),
        gold=label_id,
        metrics=("acc", "acc_norm", "balanced_acc", "mcc", "macro_f1") if balanced else ("acc", "acc_norm"),
        stratified=balanced,
        extra_checks=(check_label,),
        description=f"JGLUE JNLI {version}, 3-way NLI with {'Japanese' if balanced else 'English'} label words",
    )


TASK_1_1 = register(make_task("1.1"))
TASK_1_3 = register(make_task("1.3"))
TASKS = (TASK_1_1, TASK_1_3)
