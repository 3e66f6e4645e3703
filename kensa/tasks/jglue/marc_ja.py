"""MARC-ja (JGLUE): binary sentiment of Amazon product reviews. Harness task ``marc_ja-1.1-*`` (spec 3.3).

The label words are the continuations, with no leading space, in label-id order (positive=0,
negative=1): ``positive/negative`` in prompt 0.2, ``ポジティブ/ネガティブ`` in 0.3-0.6. JGLUE's
ClassLabel also has ``neutral=2``; no MARC-ja split holds it, and a row that does is a data error
(the task has two choices). Metrics are those of the harness at HEAD, where MARC-ja 1.1 is a
BalancedMultipleChoiceTask: acc, acc_norm, balanced_acc, mcc, macro_f1 (acc and acc_norm are
computed exactly as in the published, plain MultipleChoiceTask runs). Shots: plain ``rnd.sample``.

Data: Amazon withdrew MARC, so ``shared/data`` has none; kensa reads JGLUE's JSON Lines layout
(``jglue/marc_ja/{train,valid}-v*.json``: ``sentence``, ``label`` string, ``review_id``) or the Hub
parquet conversion of ``shunk031/JGLUE`` (validation = the 5,654-review official dev set; the
earliest published runs had 5,734, spec 3.3).
"""

from __future__ import annotations

from kensa.data import DatasetSpec
from kensa.tasks.base import MultipleChoiceTask
from kensa.tasks.prompts import PromptTemplate, alpaca, llama2, rinna_bilingual, rinna_sft
from kensa.tasks.registry import register

LABELS = ("positive", "negative")
"""The label strings the task scores, in ClassLabel id order (``neutral`` = 2 has no choice)."""
JA = ("ポジティブ", "ネガティブ")

DATASET = DatasetSpec(
    name="JGLUE MARC-ja",
    local={"train": "jglue/marc_ja/train-v*.json", "validation": "jglue/marc_ja/valid-v*.json"},
    hub_id="shunk031/JGLUE",
    hub_kwargs={"revision": "refs/convert/parquet", "data_dir": "MARC-ja"},
    fields={"sentence": str, "label": (str, int), "review_id": str},
    id_field="review_id",
    missing_hint="MARC-ja is no longer distributed (Amazon withdrew MARC), so shared/data has none: put JGLUE's "
    "marc_ja-v1.0 files there, use --data-from-hub, or deselect the task with -k 'not marc_ja'",
)

INSTRUCTION = "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"

TEMPLATES = (
    PromptTemplate(
        "0.2", name="fintan",
        description="製品レビューをnegativeかpositiveのいずれかのセンチメントに分類してください。出力は小文字化してください。 \n\n",
        text="製品レビュー:{sentence}\nセンチメント:",
        target="{answer}",
        labels=LABELS,
    ),
    alpaca("0.3", INSTRUCTION, "{sentence}", labels=JA),
    rinna_sft("0.4", "与えられた製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。", "{sentence}",
              labels=JA),
    rinna_bilingual("0.5", "与えられた製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。",
                    "{sentence}", labels=JA),
    llama2("0.6", INSTRUCTION, "{sentence}", labels=JA),
)


def label_id(row) -> int:
    label = row["label"]
    return LABELS.index(label) if isinstance(label, str) else label


def check_label(row):
    label = row["label"]
    if isinstance(label, str) and label not in LABELS or isinstance(label, int) and label not in (0, 1):
        return "label", f"{label!r} is not one of {', '.join(LABELS)} (or 0, 1)"
    return None


TASK = register(
    MultipleChoiceTask(
        name="marc_ja",
        version="1.1",
        suite="jglue",
        dataset=DATASET,
        eval_split="validation",
        fewshot_split="train",
        num_fewshot=3,
        templates=TEMPLATES,
        view=lambda row: {"sentence": row["sentence"], "answer": LABELS[label_id(row)]},
        choices=lambda row: list(LABELS),
        gold=label_id,
        metrics=("acc", "acc_norm", "balanced_acc", "mcc", "macro_f1"),
        extra_checks=(check_label,),
        description="JGLUE MARC-ja, binary review sentiment",
    )
)
