"""What a task is: its dataset, splits, prompt versions, few-shot count and metrics, as data.

A task file builds one :class:`MultipleChoiceTask` or :class:`GenerationTask` and registers it.
The evaluation loops live in ``kensa.run``; a task only says
*what* to ask and how to score one document.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kensa.data import DatasetSpec, DataSource, Split, load_split, read_jsonl
from kensa.errors import DataError, KensaError
from kensa.tasks.prompts import PromptTemplate, check_unique_versions

Row = Mapping[str, Any]


@dataclass(frozen=True)
class TaskVariant:
    """One task at one prompt version: the unit that becomes one pytest test."""

    task: MultipleChoiceTask | GenerationTask
    template: PromptTemplate

    @property
    def task_id(self) -> str:
        """Harness registry key, e.g. ``jcommonsenseqa-1.1-0.3``; also the pytest id. A task without
        prompt versions (XWinograd) is registered under its bare name, e.g. ``xwinograd_ja``."""
        if not self.task.prompt_versioned:
            return self.task.name
        return f"{self.task.name}-{self.task.version}-{self.template.version}"

    def view(self, row: Row) -> dict[str, str]:
        """The task's view of a row, with ``answer`` in this prompt version's label words if it has its own."""
        view = self.task.view(row)
        if self.template.labels:
            view = {**view, "answer": self.template.labels[self.task.gold(row)]}
        return view

    def applies_to(self, kind: str | None) -> bool:
        """Whether a model of ``kind`` (``causal``/``seq2seq``; None: unknown) runs this variant."""
        return kind is None or not self.template.model_kinds or kind in self.template.model_kinds

    def trained_for(self, kind: str) -> bool:
        """Whether the built-in trained tiny model of ``kind`` learns this variant: the prompts written
        for it (a prompt for any model counts as a causal one)."""
        return self.template.tiny_trained and kind in (self.template.model_kinds or ("causal",))

    def choices(self, row: Row) -> list[str]:
        """The continuations to score: this prompt version's label words if it has its own, else the task's."""
        return list(self.template.labels) if self.template.labels else self.task.choices(row)


class TaskData:
    """Loading and few-shot pools, shared by every kind of task (the fields live on the dataclasses)."""

    name: str
    version: str
    dataset: DatasetSpec
    eval_split: str
    fewshot_split: str | None
    fewshot_fallback: tuple[str, ...]
    templates: Sequence[PromptTemplate]
    prompt_versioned: bool
    extra_checks: tuple[Callable[[Row], tuple[str, str] | None], ...]
    optional_data: str = ""
    """Non-empty for a task whose data only users have: why its test skips (a field of the generation tasks)."""

    def variants(self) -> list[TaskVariant]:
        return [TaskVariant(self, t) for t in self.templates]  # type: ignore[arg-type]

    def versions(self) -> list[str]:
        """Prompt versions (none for a task without them, whose one template has version "")."""
        return [t.version for t in self.templates] if self.prompt_versioned else []

    @property
    def key(self) -> tuple[str, str]:
        """Registry key: one task name may be registered at several task versions (JNLI 1.1 and 1.3)."""
        return (self.name, self.version)

    def run_extra_checks(self, split: Split, index: int) -> None:
        row = split.rows[index]
        for check in self.extra_checks:
            problem = check(row)
            if problem is not None:
                raise DataError(split.source, split.line_of(index), problem[1], field=problem[0])

    def check_rows(self, split: Split) -> None:
        for index in range(len(split.rows)):
            self.run_extra_checks(split, index)

    def load(self, source: DataSource) -> tuple[Split, Split | None]:
        """Load and check the eval split and, when the task has one, the few-shot pool."""
        eval_split = load_split(self.dataset, self.eval_split, source)
        self.check_rows(eval_split)
        if self.fewshot_split is None:
            return eval_split, None
        pool = self.load_pool(source)
        self.check_rows(pool)
        return eval_split, pool

    def load_pool(self, source: DataSource) -> Split:
        """The few-shot pool: ``source.pools[name]`` when given (a split name or a file), else
        ``fewshot_split``, else (local data only) the first ``fewshot_fallback`` split that has a file."""
        assert self.fewshot_split is not None
        override = source.pool_for(self.name)
        if override is not None:
            if override in self.dataset.local or source.kind == "hub":
                return load_split(self.dataset, override, source)
            reader = self.dataset.reader or read_jsonl
            return reader(self.dataset, Path(override), split=f"file:{override}")
        if source.kind != "local" or not self.fallback_needed(source):
            return load_split(self.dataset, self.fewshot_split, source)
        for split in self.fewshot_fallback:
            if self.has_local(source, split):
                warnings.warn(f"{self.name}: no {self.fewshot_split!r} file under {source.root}; few-shot examples "
                              f"come from the {split!r} split instead (recorded in the results)", stacklevel=2)
                return load_split(self.dataset, split, source)
        return load_split(self.dataset, self.fewshot_split, source)  # raises, naming the missing file

    def fallback_needed(self, source: DataSource) -> bool:
        return bool(self.fewshot_fallback) and not self.has_local(source, self.fewshot_split or "")

    def has_local(self, source: DataSource, split: str) -> bool:
        pattern = self.dataset.local.get(split)
        if source.kind == "fixtures":
            pattern = self.dataset.fixture_local.get(split, pattern)
        return pattern is not None and source.root is not None and any(source.root.glob(pattern))


@dataclass(frozen=True)
class MultipleChoiceTask(TaskData):
    """A log-likelihood multiple-choice task (JCommonsenseQA, JNLI, MARC-ja, ...).

    Each choice is scored as a continuation of the prompt; ``acc`` takes the argmax of the
    summed log-probabilities and ``acc_norm`` the argmax after dividing by the choice's
    length in characters.
    """

    name: str
    version: str
    suite: str
    dataset: DatasetSpec
    eval_split: str
    fewshot_split: str | None
    """The few-shot pool's split; None for a 0-shot-only task with no pool (XWinograd)."""
    num_fewshot: int
    templates: Sequence[PromptTemplate]
    view: Callable[[Row], dict[str, str]]
    """The fields a template may use, built from one source row."""
    choices: Callable[[Row], list[str]]
    """The continuations to score, exactly as they are appended to the prompt."""
    gold: Callable[[Row], int]
    choice_fields: tuple[str, ...] = ()
    """The row fields the choices come from, when they are plain fields (for error messages)."""
    metrics: tuple[str, ...] = ("acc", "acc_norm")
    description: str = ""
    extra_checks: tuple[Callable[[Row], tuple[str, str] | None], ...] = field(default=())
    """Row checks beyond field types; each returns (field, message) for a bad row."""
    fewshot_fallback: tuple[str, ...] = ()
    """Splits to draw shots from, in order, when a local ``--data-dir`` has no file for ``fewshot_split``
    (JNLI: ``test``, as ``shared/data`` has no JNLI train file). The results record the pool's file."""
    stratified: bool = False
    """Shots by the harness's stratified sampler (strata = rendered targets) instead of ``rnd.sample``."""
    strict_acc: bool = False
    """``acc`` needs the gold choice strictly above every other (a tie scores 0), not argmax-first."""
    prompt_versioned: bool = True
    """False for a task registered without prompt versions: its one variant's id is the bare name."""

    def __post_init__(self) -> None:
        check_unique_versions(self.name, self.templates)

    @property
    def kind(self) -> str:
        return "multiple_choice"

    def check_rows(self, split: Split) -> None:
        """Task-level checks on top of the field types: the gold label must index a choice."""
        for index, row in enumerate(split.rows):
            i = split.line_of(index)
            self.run_extra_checks(split, index)
            cs = self.choices(row)
            for j, c in enumerate(cs):
                if not c:
                    # acc_norm divides by the choice's length; an empty choice has none.
                    name = self.choice_fields[j] if j < len(self.choice_fields) else f"choices[{j}]"
                    raise DataError(split.source, i, "empty choice", field=name)
            n = len(cs)
            gold = self.gold(row)
            if not 0 <= gold < n:
                raise DataError(split.source, i, f"label {gold} is out of range 0..{n - 1}", field="label")


def stop_at_separator(template: PromptTemplate) -> tuple[str, ...]:
    """The harness's ``SEP`` as the stop string: the literal ``<NL>`` for the rinna-sft prompts (0.4),
    a newline for every other version (the Llama-2 prompts too, whose few-shot separator differs)."""
    return ("<NL>",) if template.fewshot_sep == "<NL>" else ("\n",)


@dataclass(frozen=True)
class GenerationTask(TaskData):
    """A greedy-generation task (JSQuAD, JAQKET v2, XL-Sum, MGSM, JSTS).

    Per doc the engine renders the prompt (fitting it to the model's context when the task says
    how), asks the model for a greedy continuation cut at the stop strings, and hands the text to
    ``score``. ``score(generation, row, lm)`` returns the doc's metric values (on the metric's own
    scale), plus ``extracted`` where the task parses an answer out of the text, plus ``gold_value``
    and ``pred`` for a corpus metric over (gold, prediction) pairs (JSTS's correlations).
    """

    name: str
    version: str
    suite: str
    dataset: DatasetSpec
    eval_split: str
    fewshot_split: str | None
    num_fewshot: int
    templates: Sequence[PromptTemplate]
    view: Callable[[Row], dict[str, str]]
    golds: Callable[[Row], list[str]]
    """Every gold answer of a doc (JSQuAD has several); the first is the few-shot target."""
    score: Callable[[str, Row, Any], dict[str, Any]]
    metrics: tuple[str, ...]
    """The gated metrics, under the harness's result keys (``exact_match``, ``f1``, ``rouge2``, ``acc``)."""
    reported: tuple[str, ...] = ()
    """Metrics reported beside the gated ones but never gated (JSTS's ``unparseable`` count)."""
    max_new_tokens: Callable[[Row, Any], int] | None = None
    """``max_new_tokens(row, lm)``: the doc's generation budget (JSQuAD: the longest gold answer in the
    model's tokens). None: the model's ``max_gen_toks`` (the harness's 256)."""
    until: Callable[[PromptTemplate], tuple[str, ...]] = stop_at_separator
    fit: Any = None
    """How a prompt is made to fit ``max_length - max_new_tokens`` tokens: None (the backend cuts it from
    the left), ``"resample"`` (fewer shots, drawn again, until it fits: JAQKET v2 0.2, MGSM at HEAD), or
    ``fit(prompt, template, budget, lm) -> prompt`` (XL-Sum's article truncation, MGSM's published cut)."""
    description: str = ""
    extra_checks: tuple[Callable[[Row], tuple[str, str] | None], ...] = field(default=())
    fewshot_fallback: tuple[str, ...] = ()
    stratified: bool = False
    prompt_versioned: bool = True
    clusters: Callable[[Row], Any] | None = None
    """A doc's cluster for the gate's paired test (JSQuAD: the paragraph; its questions are not independent)."""
    pool_text: Callable[[Row], str] | None = None
    """The text of a few-shot pool doc that a generation must not copy (question generation: its question):
    each sample records whether its output equals one, and the task reports ``copies``."""
    roundtrip: Any = None
    """A :class:`kensa.tasks.qa.common.RoundTrip`: a QA model answers each generated question from the same
    context, scored against the intended answer (answerability)."""
    optional_data: str = ""
    """Non-empty for a task whose data only users have (their own TSV): the reason the test skips when the
    data directory has no file for it."""

    def __post_init__(self) -> None:
        check_unique_versions(self.name, self.templates)
        if self.fit not in (None, "resample") and not callable(self.fit):
            raise KensaError(f"task {self.name}: fit must be None, 'resample' or a function, not {self.fit!r}")

    @property
    def kind(self) -> str:
        return "generation"

    def check_rows(self, split: Split) -> None:
        """Task-level checks on top of the field types: every doc needs a non-empty gold answer."""
        for index, row in enumerate(split.rows):
            self.run_extra_checks(split, index)
            golds = self.golds(row)
            if not golds or not all(isinstance(g, str) and g for g in golds):
                raise DataError(split.source, split.line_of(index), f"no usable gold answer in {golds!r}",
                                field="answers")


def validate_templates(task: MultipleChoiceTask | GenerationTask, sample_row: Row) -> None:
    """Every template must render from a view; a missing field is a bug in the task file."""
    view = task.view(sample_row)
    for t in task.templates:
        missing = t.fields() - set(view)
        if missing:
            raise KensaError(f"task {task.name} prompt {t.version}: fields {sorted(missing)} not in the view")
