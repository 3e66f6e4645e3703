"""JSTS (JGLUE): semantic textual similarity of two sentences, 0-5. kensa's own task ``jsts-1.0-*``.

The jp-stable harness has no JSTS task (spec 1.1), so this one is kensa's, built from the harness's
parts: the JNLI prompt families (spec 3.2) with ``文1``/``文2`` for premise/hypothesis and an
instruction asking for a number from 0 to 5; greedy generation (spec 2.5) cut at the family's
separator (``stop_at_separator``); few-shot assembly and doc order as every harness task (spec 2.1, 2.2).

* Target: the label as the JGLUE files write it, one decimal (``2.4``, ``5.0``). All labels in v1.3
  are multiples of 0.2, so the target is exact. The Hub parquet holds the label as float32
  (``2.4000000953674316``); formatting with one decimal gives the same target, and the gold value
  scored is the target read back (2.4), so local files and the Hub score identically.
* Output: :func:`parse_similarity` reads a plain decimal number in [0, 5] (after NFKC, so
  full-width digits count) and nothing else; anything else is *unparseable*: never turned into a
  number, left out of the correlations and counted in ``unparseable`` (reported, never gated).
* Budget: 8 new tokens. ``x.y`` takes 3 tokens where digits and the point are single pieces
  (SentencePiece byte fallback, GPT-NeoX BPE), 4 with a leading ``▁``; the longest stop string,
  the literal ``<NL>`` of 0.4, takes up to 4 more where the tokenizer has no piece for it (kensa's
  tiny SentencePiece model: ``<``, ``N``, ``L``, ``>``). A well-formed answer and its stop string
  therefore always fit, so the budget never cuts a stop string in half (5 would leave ``2.4<N``,
  which is unparseable), and a model that rambles costs at most 8 tokens a doc.
* Shots: k=3 from ``train``, plain random draws (the label is continuous; nothing to stratify by),
  as JNLI and JCommonsenseQA in the standard suite; JSTS pairs are short (at most 129 characters
  per sentence in v1.3), so three shots fit any context.
* Metrics: Pearson and Spearman over the parsed (gold, pred) pairs (0.0 when undefined).

Data: JGLUE ``jsts/{train,valid}-v*.json`` JSON Lines (``sentence_pair_id`` str, ``yjcaptions_id``,
``sentence1``, ``sentence2``, ``label`` float), or ``shunk031/JGLUE`` ``JSTS`` from the Hub's
parquet conversion (``refs/convert/parquet``; the repo's own ``JGLUE.py`` is a loading script,
which datasets 4 refuses). The Hub copy is the JGLUE v1.1 data; shared/data has v1.3.
"""

from __future__ import annotations

import math
import re
import unicodedata

from kensa.data import DatasetSpec
from kensa.tasks.base import GenerationTask
from kensa.tasks.prompts import alpaca, llama2, rinna_bilingual, rinna_sft
from kensa.tasks.registry import register

LOW, HIGH = 0.0, 5.0
MAX_NEW_TOKENS = 8
"""Fixed generation budget: ``x.y`` plus the longest stop string (``<NL>``) in any tokenizer (see above)."""

DATASET = DatasetSpec(
    name="JGLUE JSTS",
    local={"train": "jglue/jsts/train-v*.json", "validation": "jglue/jsts/valid-v*.json",
           "test": "jglue/jsts/test-v*.json"},
    hub_id="shunk031/JGLUE",
    hub_kwargs={"revision": "refs/convert/parquet", "data_dir": "JSTS"},
    fields={"sentence_pair_id": str, "sentence1": str, "sentence2": str, "label": (float, int)},
    id_field="sentence_pair_id",
)

INSTRUCTION = "与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。"
OUTPUT = "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。"

TEMPLATES = (
    alpaca("0.3", f"{INSTRUCTION}\n\n{OUTPUT}", "文1：{sentence1}\n文2：{sentence2}"),
    rinna_sft("0.4", f"{INSTRUCTION}{OUTPUT}", "文1：{sentence1}<NL>文2：{sentence2}"),
    rinna_bilingual("0.5", f"{INSTRUCTION}{OUTPUT}", "文1：{sentence1}\n文2：{sentence2}"),
    llama2("0.6", f"{INSTRUCTION}\n\n{OUTPUT}", "文1：{sentence1}\n文2：{sentence2}"),
)

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
"""A plain decimal: ASCII digits, optionally a point and more digits. No sign, exponent, or bare point."""


def parse_similarity(text: str) -> float | None:
    """The similarity a generation states, or None when it is not a plain decimal number in [0, 5].

    NFKC first (``２．４`` -> ``2.4``, an ideographic space -> a space), then surrounding whitespace
    is stripped; the rest must be the whole number: ``2.4``, ``3``, ``04.0``. A sign (``+3``, ``-0``),
    an exponent, ``.5``, ``3.``, a unit or any other text (``3.0点``, ``約3``) gives None, as does a
    number outside [0, 5]. An unparseable output is never mapped to a number.
    """
    s = unicodedata.normalize("NFKC", text).strip()
    if not _NUMBER.fullmatch(s):
        return None
    value = float(s)
    return value if LOW <= value <= HIGH else None


def target(row) -> str:
    """The label as the JGLUE files write it: one decimal."""
    return f"{row['label']:.1f}"


def gold_value(row) -> float:
    """The gold similarity: the target read back, so a float32 Hub label (2.4000000953674316) is 2.4."""
    return float(target(row))


def check_label(row):
    label = row["label"]
    number = isinstance(label, float | int) and not isinstance(label, bool)
    if not (number and math.isfinite(label) and LOW <= label <= HIGH):
        return "label", f"{label!r} is not a similarity from 0 to 5"
    if abs(float(target(row)) - label) > 1e-6:  # float32 from the Hub is off by ~1e-7; 2.45 is not a label
        return "label", f"{label!r} has more than one decimal (JSTS labels are multiples of 0.2)"
    return None


def view(row) -> dict[str, str]:
    return {"sentence1": row["sentence1"], "sentence2": row["sentence2"], "answer": target(row)}


def score(generation: str, row, lm) -> dict:
    pred = parse_similarity(generation)
    return {"extracted": pred, "pred": pred, "gold_value": gold_value(row)}


TASK = register(
    GenerationTask(
        name="jsts",
        version="1.0",
        suite="jglue",
        dataset=DATASET,
        eval_split="validation",
        fewshot_split="train",
        num_fewshot=3,
        templates=TEMPLATES,
        view=view,
        golds=lambda row: [target(row)],
        score=score,
        metrics=("pearson", "spearman"),
        reported=("unparseable",),
        max_new_tokens=lambda row, lm: MAX_NEW_TOKENS,
        extra_checks=(check_label,),
        description="JGLUE JSTS, sentence similarity 0-5 generated as a number (kensa's own task; not in the harness)",
    )
)
