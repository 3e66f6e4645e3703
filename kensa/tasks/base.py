"""What a task is: its dataset, splits, prompt versions, few-shot count and metrics, as data.

A task file builds one :class:`MultipleChoiceTask` (later: generation tasks) and registers it.
The evaluation loop lives in ``kensa.evaluate``; a task only says *what* to ask and how to
score one document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kensa.data import DatasetSpec, DataSource, Split, load_split
from kensa.errors import DataError, KensaError
from kensa.prompts import PromptTemplate, check_unique_versions

Row = Mapping[str, Any]


@dataclass(frozen=True)
class TaskVariant:
    """One task at one prompt version: the unit that becomes one pytest test."""

    task: MultipleChoiceTask
    template: PromptTemplate

    @property
    def task_id(self) -> str:
        """Harness registry key, e.g. ``jcommonsenseqa-1.1-0.3``; also the pytest id."""
        return f"{self.task.name}-{self.task.version}-{self.template.version}"


@dataclass(frozen=True)
class MultipleChoiceTask:
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
    fewshot_split: str
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

    def __post_init__(self) -> None:
        check_unique_versions(self.name, self.templates)

    @property
    def kind(self) -> str:
        return "multiple_choice"

    def variants(self) -> list[TaskVariant]:
        return [TaskVariant(self, t) for t in self.templates]

    def versions(self) -> list[str]:
        return [t.version for t in self.templates]

    def check_rows(self, split: Split) -> None:
        """Task-level checks on top of the field types: the gold label must index a choice."""
        for index, row in enumerate(split.rows):
            i = split.line_of(index)
            for check in self.extra_checks:
                problem = check(row)
                if problem is not None:
                    raise DataError(split.source, i, problem[1], field=problem[0])
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

    def load(self, source: DataSource) -> tuple[Split, Split | None]:
        """Load and check the eval split and, when shots are used, the few-shot pool."""
        eval_split = load_split(self.dataset, self.eval_split, source)
        self.check_rows(eval_split)
        pool = load_split(self.dataset, self.fewshot_split, source)
        self.check_rows(pool)
        return eval_split, pool


def validate_templates(task: MultipleChoiceTask, sample_row: Row) -> None:
    """Every template must render from a view; a missing field is a bug in the task file."""
    view = task.view(sample_row)
    for t in task.templates:
        missing = t.fields() - set(view)
        if missing:
            raise KensaError(f"task {task.name} prompt {t.version}: fields {sorted(missing)} not in the view")
