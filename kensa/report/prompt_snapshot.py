"""The text of a prompt snapshot: a task variant's first fixture docs rendered in the harness's order, with their
shots, the continuations a log-likelihood test scores or the stop strings and budget a generation test uses.
Every suite's prompt snapshot test renders with :func:`render_prompts`; :mod:`kensa.report.snapshot_text`
quotes the strings."""

from __future__ import annotations

from kensa.data import DataSource
from kensa.report.snapshot_text import HEADER_NOTE, quote, quote_lines, quote_list
from kensa.tasks.render import NoModel, prepare, prepare_generation

DOCS = 2


def render_prompts(task_variant, docs: int = DOCS, *, quiz: bool = False) -> str:
    """The snapshot text of ``task_variant``. A quiz variant (``quiz``) is 0-shot, its docs are questions and
    it has no shot ids; any other is rendered at the task's few-shot count, then its first doc once more
    0-shot (the description and the query template alone)."""
    task = task_variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    generation = task.kind == "generation"
    kind = "generation" if generation else "multiple choice"
    k = 0 if quiz else task.num_fewshot
    what = "fixture questions" if quiz else "fixture docs"
    lines = [(f"# kensa prompt snapshot: {task_variant.task_id} ({kind}); the first {docs} {what} in the "
              f"harness's order, {k}-shot"), HEADER_NOTE]
    if generation:
        rendered = prepare_generation(task_variant, eval_split, pool, k, docs, NoModel())
    else:
        rendered = prepare(task_variant, eval_split, pool, k, limit=docs)
    for n, d in enumerate(rendered, 1):
        lines += ["", f"== doc {n} of {len(rendered)} =="]
        if not quiz:
            lines.append(f"fewshot_ids: {quote_list(str(x) for x in d.shot_ids)}")
        if generation:
            # NoModel counts a token per UTF-8 byte: a real model's budget differs, a changed rule shows.
            budget = "max_new_tokens" if quiz else "max_new_tokens (no-model, 1 token per UTF-8 byte)"
            lines += [f"until: {quote_list(d.until)}", f"{budget}: {d.max_new_tokens}",
                      f"golds: {quote_list(d.golds)}"]
        else:
            lines += [f"gold: {d.gold}", "continuations:"]
            lines += [f"  [{i}] {quote(c)}" for i, c in enumerate(d.continuations)]
        lines += ["prompt:", *quote_lines(d.prompt)]
    if k:
        if generation:
            zero = prepare_generation(task_variant, eval_split, pool, 0, 1, NoModel())[0]
        else:
            zero = prepare(task_variant, eval_split, pool, 0, limit=1)[0]
        lines += ["", "== doc 1, 0-shot ==", "prompt:", *quote_lines(zero.prompt)]
    return "\n".join(lines) + "\n"


def render_record_prompts(relative_path: str, version: str) -> str:
    """Quiz prompt ``version`` (0.1 / 0.2) of the first :data:`DOCS` records of one fixture file, as the quiz
    suite renders them: a training-format record keeps its own instruction byte for byte, a source with none (a
    JMMLU row) gets the canonical one."""
    from kensa.tasks.quiz import formats
    from kensa.tasks.quiz.prompts import CHOICE_TEMPLATES
    from kensa.tasks.quiz.tasks import view

    path = DataSource.fixtures().root / relative_path
    rows = formats.read_jmmlu(path)[0] if path.suffix == ".csv" else formats.read_seed(path)[0]
    template = next(t for t in CHOICE_TEMPLATES if t.version == version)
    lines = [f"# kensa prompt snapshot: quiz prompt {version} ({template.name}) of {path.name}, the first {DOCS} rows",
             HEADER_NOTE]
    for n, row in enumerate(rows[:DOCS], 1):
        lines += ["", f"== row {n} of {DOCS} ==", "prompt:", *quote_lines(template.context([], view(row)))]
    return "\n".join(lines) + "\n"
