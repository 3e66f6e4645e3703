"""``python -m kensa generate``: one question from an answer and its context, with the QA suite's AQG prompt
for the model's kind (seq2seq: ``answer: … context: …``, or the highlighted context with ``--highlight``;
causal: the ja-alpaca prompt), optionally with bad words that the output must not contain.

The bad words are blocked in every token spelling (:mod:`kensa.backends.bad_words`) and the output is
also checked as a string: a word found anyway is reported on stderr and the exit code is 1.
"""

from __future__ import annotations

import argparse
import sys

from kensa.errors import KensaError, OptionError


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="generate a question for an answer in a context (AQG), with optional bad words")
    p.add_argument("--model", required=True, help="a Hub id, a local model directory, or a built-in tiny model")
    p.add_argument("--model-args", default=None, metavar="K=V,...", help="as for pytest --model-args")
    p.add_argument("--answer", required=True, help="the answer the question should ask for")
    p.add_argument("--context", required=True, help="the passage that holds the answer")
    p.add_argument("--answer-start", type=int, default=None,
                   help="where the answer starts in the context (needed with --highlight when it occurs twice)")
    p.add_argument("--highlight", action="store_true", help="AQG-HL: wrap the answer span in <hl> markers")
    p.add_argument("--bad-words", nargs="+", default=None, metavar="W",
                   help="words the question must not contain: several values (--bad-words 山梨 山梨県) or a comma "
                        "list (山梨,山梨県); a word with whitespace inside is an error")
    p.add_argument("--max-new-tokens", type=int, default=None, help="token budget (default 128)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=run)


def _row(answer: str, context: str, start: int | None, highlight: bool) -> dict:
    if not context.strip():
        raise OptionError("--context", "is empty")
    if not answer.strip():
        raise OptionError("--answer", "is empty")
    if start is None:
        count = context.count(answer)
        if count == 0:
            raise OptionError("--answer", f"{answer!r} does not occur in the context")
        if count > 1 and highlight:
            raise OptionError("--answer-start", f"{answer!r} occurs {count} times in the context; say which with "
                                                "--answer-start")
        start = context.index(answer)
    elif context[start: start + len(answer)] != answer:
        raise OptionError("--answer-start", f"{start} points at {context[start: start + len(answer)]!r}, "
                                            f"not at {answer!r}")
    return {"id": "cli", "title": "", "context": context, "question": "",
            "answers": {"text": [answer], "answer_start": [start]}}


def bad_words(values: list[str]) -> tuple[str, ...]:
    """``--bad-words 山梨 山梨県`` and ``--bad-words 山梨,山梨県`` (or both mixed): the words, each checked."""
    from kensa.backends.args import parse_bad_words

    words = tuple(w for v in values for w in parse_bad_words("--bad-words", v, sep=","))
    if len(set(words)) != len(words):
        raise OptionError("--bad-words", f"{' '.join(values)!r}: a word is given twice")
    return words


def run(args: argparse.Namespace) -> int:
    from kensa.backends.args import BAD_WORDS_SEP, parse_model_args
    from kensa.backends.contract import GenerationRequest
    from kensa.models import load_model, resolve_model
    from kensa.tasks.qa import common, jsquad_qa

    try:
        model_args = args.model_args or ""
        if args.bad_words is not None:
            words = bad_words(args.bad_words)
            if "bad_words=" in model_args:
                raise OptionError("--bad-words", "give the bad words once: here or as --model-args bad_words=")
            model_args = ",".join(x for x in (model_args, "bad_words=" + BAD_WORDS_SEP.join(words)) if x)
        row = _row(args.answer, args.context, args.answer_start, args.highlight)
        spec = resolve_model(args.model, parse_model_args(model_args))
        lm = load_model(spec, args.device)
    except KensaError as exc:
        print(f"kensa generate: {exc}", file=sys.stderr)
        return 4 if isinstance(exc, OptionError) else 2
    try:
        templates = jsquad_qa.AQG_HL_TEMPLATES if args.highlight else jsquad_qa.AQG_TEMPLATES
        template = next(t for t in templates if lm.kind in t.model_kinds)
        view = common.hl_view(row) if args.highlight else common.view(row)
        prompt = template.context([], view)
        budget = args.max_new_tokens or common.qg_budget(lm)
        result = lm.generate_until([GenerationRequest(prompt, (), budget)])[0]
    finally:
        lm.close()
    print(result.text)
    from kensa.backends.bad_words import count_violations

    found = count_violations(result.text, lm.bad_words) if lm.bad_words else {}
    print(f"kensa generate: prompt {template.version} ({template.name}), stop reason {result.stop_reason}, "
          f"{result.generated_tokens} tokens", file=sys.stderr)
    if found:
        print(f"kensa generate: the output holds bad words anyway: {found}", file=sys.stderr)
        return 1
    return 0
