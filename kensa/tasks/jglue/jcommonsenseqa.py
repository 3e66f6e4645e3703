"""JCommonsenseQA (JGLUE): 5-way commonsense multiple choice. Harness task ``jcommonsenseqa-1.1-*``.

Every choice is scored as written, with no leading space, in every prompt version.
Prompt 0.2 shows the shots' answers as indices but scores choice texts (a harness quirk
kept on purpose: it is why 0.2 scores low and 0.2.1 exists).
"""

from __future__ import annotations

from kensa.data import DatasetSpec
from kensa.tasks.base import MultipleChoiceTask
from kensa.tasks.prompts import PromptTemplate, alpaca, llama2, rinna_bilingual, rinna_sft
from kensa.tasks.registry import register

CHOICE_FIELDS = tuple(f"choice{i}" for i in range(5))

DATASET = DatasetSpec(
    name="JGLUE JCommonsenseQA",
    local={"train": "jglue/jcommonsenseqa/train-v*.json", "validation": "jglue/jcommonsenseqa/valid-v*.json"},
    hub_id="sbintuitions/JCommonsenseQA",
    fields={"q_id": (int, str), "question": str, **{f: str for f in CHOICE_FIELDS}, "label": int},
    id_field="q_id",
)

DASHED = "\n".join(f"- {{c{i}}}" for i in range(5))  # "- {c0}\n- {c1}\n..."

TEMPLATES = (
    PromptTemplate(
        "0.1", name="jgpt",
        description="[問題]に対する[答え]を[選択肢]の中から選んでください。\n\n",
        text="[問題]:{question}\n[選択肢]:[{c0}, {c1}, {c2}, {c3}, {c4}]\n[答え]:",
        target="{answer}",
    ),
    PromptTemplate(
        "0.2", name="fintan",
        description="質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。"
        "なお、回答は選択肢の番号(例:0)でするものとします。 \n\n",
        text="質問:{question}\n選択肢:0.{c0},1.{c1},2.{c2},3.{c3},4.{c4}\n回答:",
        target="{label}",
    ),
    PromptTemplate(
        "0.2.1", name="fintan2",
        description="与えられた選択肢の中から、最適な答えを選んでください。 \n\n",
        text=f"質問：{{question}}\n選択肢：\n{DASHED}\n回答：",
        target="{answer}",
    ),
    alpaca("0.3", f"与えられた選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n{DASHED}", "{question}"),
    rinna_sft("0.4", "与えられた選択肢の中から、最適な答えを選んでください。",
              "質問：{question}<NL>選択肢：<NL>" + DASHED.replace("\n", "<NL>")),
    rinna_bilingual("0.5", "与えられた選択肢の中から、最適な答えを選んでください。", f"質問：{{question}}\n選択肢：\n{DASHED}"),
    llama2("0.6", f"与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n{DASHED}",
           "質問：{question}"),
)


def choices(row) -> list[str]:
    return [row[f] for f in CHOICE_FIELDS]


def view(row) -> dict[str, str]:
    cs = choices(row)
    return {
        "question": row["question"],
        **{f"c{i}": c for i, c in enumerate(cs)},
        "answer": cs[row["label"]],
        "label": str(row["label"]),
    }


TASK = register(
    MultipleChoiceTask(
        name="jcommonsenseqa",
        version="1.1",
        suite="jglue",
        dataset=DATASET,
        eval_split="validation",
        fewshot_split="train",
        num_fewshot=3,
        templates=TEMPLATES,
        view=view,
        choices=choices,
        choice_fields=CHOICE_FIELDS,
        gold=lambda row: row["label"],
        description="JGLUE JCommonsenseQA, 5-way commonsense multiple choice",
    )
)
