"""The QA suite: whether the highlight marker is one token, then one test per task and prompt version, e.g. ``test_task[aqg_hl-1.0-0.1]`` (select with
``-k aqg_hl``). Prompts written for seq2seq models run only on seq2seq models, the causal ones only on
causal models (the others are deselected). Each test scores the model, writes the per-sample JSONL, fails
if a doc was lost or a number is not a valid score, and gates every metric against the baseline's
thresholds, as the JGLUE suite does. The users' own TSV task skips when ``--data-dir`` has no TSV.
"""

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.kensa_suite("qa")]


def test_task(task_variant, kensa_check):
    kensa_check(task_variant)


def test_highlight_marker_is_one_token(kensa_model):
    """The AQG-HL prompts' ``<hl>``: a seq2seq model fine-tuned on them (lmqg, patil-suraj) registers it as one
    token; split into pieces, the marker reads as text. Causal models get the marker as text (skipped)."""
    from kensa.tasks.qa.common import HL

    pieces = kensa_model.tokenize(HL)
    if kensa_model.kind != "seq2seq":
        pytest.skip(f"{kensa_model.name} is a causal model: {HL!r} is {len(pieces)} pieces {pieces}")
    assert pieces == [HL], f"{kensa_model.name}'s tokenizer splits {HL!r} into {pieces}"
