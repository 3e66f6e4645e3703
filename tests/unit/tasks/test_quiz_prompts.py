"""Prompts 0.1 and 0.2 are the record's own text, byte for byte; only sources without an instruction (JMMLU, AI王,
JAQKET) get the canonical one."""

from __future__ import annotations

import json

from kensa.tasks.quiz import formats, prompts
from kensa.tasks.quiz.tasks import view
from tests.helpers import REPO

QUIZ = REPO / "fixtures" / "quiz"
TRAIN, EVAL = prompts.CHOICE_TEMPLATES[0], prompts.CHOICE_TEMPLATES[1]
HINTED = {"instruction": "次のクイズの答えを0, 1, 2, 3, 4から選んで答えてください。ヒント: 海の生き物です。\n問題: 流氷の天使は？\n",
          "input": "0: ミズダコ\n1: オオイカリナマコ\n2: クリオネ\n3: ダイオウイカ\n4: ホタルイカ\n\n\n", "output": "2: クリオネ"}
# The seed's training record has a space before "\n選択肢".
SPACED = {"instruction": "以下の問題について、0, 1, 2, 3, 4の選択肢から選んで答えてください。\n\n問題: 日本一高い山はどこでしょう? \n"
                         "選択肢\n\n0: 北岳\n1: 富士山\n2: 立山\n3: 槍ヶ岳\n4: 白山\n\n\n### 回答:\n", "output": "1: 富士山"}


def _row(tmp_path, record):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    return formats.read_seed(path)[0][0]


def test_an_evaluation_record_is_its_instruction_and_input(tmp_path):
    v = view(_row(tmp_path, HINTED))
    assert EVAL.context([], v) == HINTED["instruction"] + HINTED["input"]  # the hint stays
    # 0.1 of an evaluation record: the canonical training text around its question and choices
    assert TRAIN.context([], v).startswith("以下の問題について、0, 1, 2, 3, 4の選択肢から選んで答えてください。\n\n問題: 流氷の天使は？\n")


def test_a_training_record_is_its_instruction(tmp_path):
    v = view(_row(tmp_path, SPACED))
    assert TRAIN.context([], v) == SPACED["instruction"]  # the space before \n選択肢 included
    assert EVAL.context([], v) == SPACED["instruction"]  # instruction + input, the input being absent


def test_sources_without_an_instruction_get_the_canonical_one():
    row = formats.read_jmmlu(QUIZ / "data" / "jmmlu" / "miscellaneous.csv")[0][0]
    v = view(row)
    assert EVAL.context([], v) == (f"以下の問題について、0, 1, 2, 3から選んで答えてください。\n問題: {row['question']}\n"
                                   + "".join(f"{i}: {c}\n" for i, c in enumerate(row["choices"])) + "\n\n")
    assert TRAIN.context([], v).endswith("\n\n\n### 回答:\n")
