"""Snapshots of the quiz prompts: the first two fixture questions of every registered quiz task and prompt
version, with the continuations a log-likelihood test scores or the stop strings and budget a generation test
uses, one text file per task variant (``__snapshots__/test_quiz_prompt_snapshots/test_prompt[<task id>].prompt.txt``).

Update after an intended change with ``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa.data import DataSource
from kensa.report.snapshot_text import HEADER_NOTE, quote, quote_lines, quote_list
from kensa.tasks.render import NoModel, prepare, prepare_generation
from plugins.snapshots import check

KENSA_SUITE = "quiz"
DOCS = 2

pytestmark = pytest.mark.snapshot


def render(task_variant) -> str:
    task = task_variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    kind = "generation" if task.kind == "generation" else "multiple choice"
    title = (f"# kensa prompt snapshot: {task_variant.task_id} ({kind}); the first {DOCS} fixture questions in the "
             "harness's order, 0-shot")
    lines = [title, HEADER_NOTE]
    if task.kind == "generation":
        docs = prepare_generation(task_variant, eval_split, pool, 0, DOCS, NoModel())
    else:
        docs = prepare(task_variant, eval_split, pool, 0, limit=DOCS)
    for n, d in enumerate(docs, 1):
        lines += ["", f"== doc {n} of {len(docs)} =="]
        if task.kind == "generation":
            lines += [f"until: {quote_list(d.until)}", f"max_new_tokens: {d.max_new_tokens}",
                      f"golds: {quote_list(d.golds)}"]
        else:
            lines += [f"gold: {d.gold}", "continuations:"]
            lines += [f"  [{i}] {quote(c)}" for i, c in enumerate(d.continuations)]
        lines += ["prompt:", *quote_lines(d.prompt)]
    return "\n".join(lines) + "\n"


def test_prompt(task_variant, prompt_snapshot):
    check(prompt_snapshot, render(task_variant), f"the prompts of {task_variant.task_id}")


# Both kinds of prompt 0.1 / 0.2: a training-format record (its own instruction, byte for byte) and a source with no
# instruction (a JMMLU row: the canonical one).
RECORD_SOURCES = {"training_record": "quiz/quiz_train.jsonl", "jmmlu": "quiz/data/jmmlu/miscellaneous.csv"}


@pytest.mark.parametrize("version", ["0.1", "0.2"])
@pytest.mark.parametrize("source", sorted(RECORD_SOURCES))
def test_record_prompt(source, version, prompt_snapshot):
    from kensa.tasks.quiz import formats
    from kensa.tasks.quiz.prompts import CHOICE_TEMPLATES
    from kensa.tasks.quiz.tasks import view

    path = DataSource.fixtures().root / RECORD_SOURCES[source]
    rows = formats.read_jmmlu(path)[0] if path.suffix == ".csv" else formats.read_seed(path)[0]
    template = next(t for t in CHOICE_TEMPLATES if t.version == version)
    lines = [f"# kensa prompt snapshot: quiz prompt {version} ({template.name}) of {path.name}, the first {DOCS} rows",
             HEADER_NOTE]
    for n, row in enumerate(rows[:DOCS], 1):
        lines += ["", f"== row {n} of {DOCS} ==", "prompt:", *quote_lines(template.context([], view(row)))]
    check(prompt_snapshot, "\n".join(lines) + "\n", f"quiz prompt {version} of {path.name}")
