"""JCoLA: Japanese acceptability judgements (yes/no). Harness task ``jcola-0.2-*`` (spec 3.9).

Continuations and targets carry a **leading space**: ``" はい"`` (acceptable, label 1) and
``" いいえ"`` (unacceptable, label 0), so a rendered shot reads ``システム:  いいえ`` (two spaces) in
0.4/0.5. kensa lists the continuations in label order, ``[" いいえ", " はい"]``, so that the argmax
(first index on ties) is the harness's ``pred = ll(" はい") > ll(" いいえ")`` with a tie going to
unacceptable. Shots are stratified by target (spec 2.2). Metrics are glue.CoLA's: balanced_acc,
mcc (bootstrap stderr) and macro_f1; the harness reports no acc for JCoLA.

Data: the in-domain split of JCoLA v1.0 (osekilab/JCoLA JSON Lines: ``uid``, ``source``, ``label``
int, ``diacritic``, ``sentence``, ``original``), or the Hub parquet conversion of ``shunk031/JGLUE``
``JCoLA`` (validation = in-domain).
"""

from __future__ import annotations

from kensa.data import DatasetSpec
from kensa.tasks.base import MultipleChoiceTask
from kensa.tasks.prompts import PromptTemplate, alpaca, llama2, rinna_bilingual, rinna_sft
from kensa.tasks.registry import register

CHOICES = (" いいえ", " はい")
"""Continuations by label id: 0 = unacceptable, 1 = acceptable."""

DATASET = DatasetSpec(
    name="JCoLA",
    local={"train": "jcola/in_domain_train-v*.json", "validation": "jcola/in_domain_valid-v*.json"},
    hub_id="shunk031/JGLUE",
    hub_kwargs={"revision": "refs/convert/parquet", "data_dir": "JCoLA"},
    fields={"uid": int, "sentence": str, "label": int},
    id_field="uid",
)

INSTRUCTION = "与えられた文が文法的であるかを回答してください。"

TEMPLATES = (
    PromptTemplate(
        "0.0", name="user",
        description="",
        text="{sentence}\n質問: この文は文法的ですか？\n答え:",
        target="{answer}",
        fewshot_sep="\n\n",
    ),
    alpaca("0.3", f"{INSTRUCTION}\n\n出力は以下から選択してください：\nはい\nいいえ", "{sentence}"),
    rinna_sft("0.4", f"{INSTRUCTION}出力は以下から選択してください：<NL>はい<NL>いいえ", "{sentence}"),
    rinna_bilingual("0.5", f"{INSTRUCTION}出力は以下から選択してください：\nはい\nいいえ", "{sentence}"),
    llama2("0.6", f"{INSTRUCTION}\n\n出力は以下から選択してください：\nはい\nいいえ", "{sentence}"),
)


def check_label(row):
    if row["label"] not in (0, 1):
        return "label", f"{row['label']!r} is not 0 (unacceptable) or 1 (acceptable)"
    return None


TASK = register(
    MultipleChoiceTask(
        name="jcola",
        version="0.2",
        suite="jglue",
        dataset=DATASET,
        eval_split="validation",
        fewshot_split="train",
        num_fewshot=3,
        templates=TEMPLATES,
        view=lambda row: {"sentence": row["sentence"], "answer": CHOICES[row["label"]]},
        choices=lambda row: list(CHOICES),
        gold=lambda row: row["label"],
        metrics=("balanced_acc", "mcc", "macro_f1"),
        stratified=True,
        extra_checks=(check_label,),
        description="JCoLA v1.0 in-domain, Japanese acceptability (yes/no)",
    )
)
