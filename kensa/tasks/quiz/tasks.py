"""Quiz tasks: one per (set, category, mode), each with the six prompt versions, so that one test checks one
(set, category, mode, prompt version) and its id says so: ``quiz_fixtures_anime_gen-1.0-0.2``.

* ``loglik``: every choice scored as a continuation in the version's form (:mod:`.prompts`); ``acc``.
* ``gen``: a greedy answer up to the next blank line or ``###`` (32 tokens at most), read by
  :func:`.answers.read_choice` from the start of its first line; ``acc`` counts an unparseable answer as wrong,
  ``unparseable_rate`` and ``late_answer_rate`` (reported, not gated) say how often that happened and how often the
  unparseable answer named one choice later in the text.
* ``open`` (AI王 only): a greedy one-line answer, normalised exact match against the accepted answers; ``acc``.

They are ordinary :class:`~kensa.tasks.base.MultipleChoiceTask` / :class:`~kensa.tasks.base.GenerationTask`
objects (the run loops, the gate and the response cache treat them like any other) that read their questions
from a :class:`~.sets.QuizSet` and score each choice in their version's form. ``timed``: their per-question
model seconds are kept with the gate's per-document outcomes, for the latency gate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from kensa.data import DatasetSpec, DataSource, Split
from kensa.tasks.base import GenerationTask, MultipleChoiceTask, TaskVariant
from kensa.tasks.quiz import answers, prompts
from kensa.tasks.quiz.sets import QuizSet, categories, category_slug, category_split, load_set

VERSION = "1.0"
MODES = {"loglik": "log-likelihood", "gen": "generation", "open": "open answer"}
MODE_METRICS = {"loglik": ("acc",), "gen": ("acc",), "open": ("acc",)}
REPORTED = ("unparseable_rate", "late_answer_rate")
"""Reported beside ``acc`` for a generation test, never gated: format failures, and the share of them that named
one choice only after the first line (format, not knowledge)."""
TASK_ID = re.compile(r"^quiz_(?P<body>[a-z0-9_]+)_(?P<mode>loglik|gen|open)-1\.0-(?P<prompt>0\.[1-6])$")


@dataclass(frozen=True)
class QuizRef:
    """What a quiz task scores: one category of one set, in one mode."""

    qset: QuizSet
    category: str
    mode: str

    def split(self, source: DataSource) -> Split:
        return category_split(self.qset, self.category, source.root, self.mode)

    def left_out(self, source: DataSource) -> list[str]:
        """Upstream rows the set leaves out (listed, reviewed defects), for the report."""
        return load_set(self.qset, source.root).left_out


@dataclass(frozen=True)
class QuizVariant(TaskVariant):
    """A quiz task at one prompt version: the choices are scored in that version's form."""

    def choices(self, row: Mapping[str, Any]) -> list[str]:
        template = self.template
        assert isinstance(template, prompts.QuizTemplate)
        return [template.continuation(i, c) for i, c in enumerate(row["choices"])]


class QuizLoading:
    """What both quiz task kinds share: questions from the set (zero-shot, no pool), variants in their form."""

    quiz: QuizRef
    timed: ClassVar[bool] = True

    def load(self, source: DataSource) -> tuple[Split, Split | None]:
        return self.quiz.split(source), None

    def variants(self) -> list[TaskVariant]:
        return [QuizVariant(self, t) for t in self.templates]  # type: ignore[arg-type,attr-defined]


@dataclass(frozen=True)
class QuizChoiceTask(QuizLoading, MultipleChoiceTask):
    quiz: QuizRef = None  # type: ignore[assignment]


@dataclass(frozen=True)
class QuizGenerationTask(QuizLoading, GenerationTask):
    quiz: QuizRef = None  # type: ignore[assignment]


def view(row: Mapping[str, Any]) -> dict[str, str]:
    """Every field a quiz template may use; ``answer_*`` is the gold in each continuation form."""
    choices = row["choices"]
    block = "\n".join(f"{i}: {c}" for i, c in enumerate(choices))
    out = {"question": row["question"], "choices": block, "choices_nl": block.replace("\n", "<NL>"),
           "labels": ", ".join(str(i) for i in range(len(choices))), "answer": row["answers"][0]}
    if choices:
        # The record's own prompt where it has one (the seed's formats), else the canonical one (prompts.py).
        own, given = row.get("instruction"), row.get("input")
        out["eval_prompt"] = own + (given or "") if own is not None else prompts.EVAL_TEXT.format_map(out)
        out["train_prompt"] = own if own is not None and given is None else prompts.TRAIN_TEXT.format_map(out)
        gold = row["gold"]
        out.update(answer_full=f"{gold}: {choices[gold]}", answer_text=choices[gold], answer_label=str(gold))
    return out


def score_choice(generation: str, row: Mapping[str, Any], lm: Any) -> dict[str, Any]:
    """``acc`` of the strictly read answer (:func:`.answers.read_choice`); an unparseable one counts as wrong and in
    ``unparseable_rate``, and also in ``late_answer_rate`` when its later text names one choice."""
    reading = answers.read_choice(generation, row["choices"])
    pred = reading.choice
    return {"acc": 1.0 if pred == row["gold"] else 0.0, "unparseable_rate": 1.0 if pred is None else 0.0,
            "late_answer_rate": 1.0 if reading.late is not None else 0.0, "extracted": pred, "late": reading.late}


def score_open(generation: str, row: Mapping[str, Any], lm: Any) -> dict[str, Any]:
    right = answers.open_answer_correct(generation, row["answers"])
    return {"acc": 1.0 if right else 0.0, "extracted": answers.normalize_answer(generation.strip().split("\n")[0])}


def task_name(qset: QuizSet, category: str, mode: str) -> str:
    return f"quiz_{qset.slug}_{category_slug(category)}_{mode}"


def make_task(qset: QuizSet, category: str, mode: str) -> QuizChoiceTask | QuizGenerationTask:
    ref = QuizRef(qset, category, mode)
    dataset = DatasetSpec(name=f"quiz: {qset.label}", local={"test": qset.files[0]}, fields={}, id_field="qid")
    common = dict(name=task_name(qset, category, mode), version=VERSION, suite="quiz", dataset=dataset,
                  eval_split="test", fewshot_split=None, num_fewshot=0, view=view, quiz=ref,
                  description=f"{qset.label}: {category}, {MODES[mode]}")
    if mode == "loglik":
        return QuizChoiceTask(templates=prompts.CHOICE_TEMPLATES, choices=lambda row: list(row["choices"]),
                              gold=lambda row: row["gold"], metrics=MODE_METRICS[mode], **common)
    if mode == "gen":
        return QuizGenerationTask(templates=prompts.CHOICE_TEMPLATES, score=score_choice, metrics=MODE_METRICS[mode],
                                  reported=REPORTED, golds=lambda row: [view(row)["answer_full"]],
                                  max_new_tokens=lambda row, lm: prompts.MAX_NEW_TOKENS, until=prompts.choice_stops,
                                  **common)
    return QuizGenerationTask(templates=prompts.OPEN_TEMPLATES, score=score_open, metrics=MODE_METRICS[mode],
                              golds=lambda row: list(row["answers"]),
                              max_new_tokens=lambda row, lm: prompts.MAX_NEW_TOKENS, until=prompts.open_stops,
                              **common)


def tasks_for(sets: Sequence[QuizSet], source: DataSource) -> list[QuizChoiceTask | QuizGenerationTask]:
    """Every (set, category, mode) task; reading each set once to learn its categories."""
    return [make_task(s, c, m) for s in sets for c in categories(s, source.root) for m in s.modes]


class KnownTaskIds(Mapping[str, Sequence[str]]):
    """Task id -> gated metrics, for reading thresholds files: the registered tasks' ids, plus any quiz id
    (quiz tasks depend on the data, so a baseline may hold entries for sets this session does not read)."""

    def __init__(self, static: Mapping[str, Sequence[str]]):
        self.static = dict(static)

    def __getitem__(self, task_id: str) -> Sequence[str]:
        if task_id in self.static:
            return self.static[task_id]
        m = TASK_ID.match(task_id)
        if m is None:
            raise KeyError(task_id)
        return MODE_METRICS[m.group("mode")]

    def __contains__(self, task_id: object) -> bool:
        return isinstance(task_id, str) and (task_id in self.static or TASK_ID.match(task_id) is not None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.static)

    def __len__(self) -> int:
        return len(self.static)
