"""The tokenizer of each ``--model`` under test: a snapshot of its behaviour on the probe set
(``fixtures/tokenizer_probes.jsonl``; ids, pieces, decoded text, chat template), one file per model
slug (``__snapshots__/test_tokenizer_snapshots/test_tokenizer[<slug>].tokens.txt``), and the
round-trip property ``decode(encode(s)) == s`` on Japanese-heavy text.

Without ``--model`` these tests skip (with the reason), so ``pytest suites -m snapshot`` needs no
model and imports no torch. A run never calls another model's snapshot file unused.
"""

from __future__ import annotations

import pytest

from kensa.report.snapshot_text import load_probes, tokenizer_report
from kensa_pytest.kensa_plugin import CONFIG_KEY
from kensa_pytest.snapshots import check

pytestmark = pytest.mark.snapshot

NO_MODEL = "no --model given: tokenizer snapshots need a model (e.g. --model tiny)"

# Known exceptions to decode(encode(s)) == s, excluded from the strategy and listed here:
# literal special-token text (<s>, </s>, <unk>, <pad>, ...) encodes to the special ids, which the
# suite's decode (skip_special_tokens=True, as the harness decodes generations) drops.
# And on a SentencePiece-style vocabulary (Metaspace: a space is written U+2581 inside the pieces), a literal
# U+2581 "▁" encodes as a space and decodes as one.
ROUND_TRIP_EXCEPTIONS = ("literal special-token text: the tokenizer's all_special_tokens",
                         "U+2581 (▁) where the tokenizer writes spaces as ▁")
METASPACE = "\u2581"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model_spec" not in metafunc.fixturenames:
        return
    models = metafunc.config.stash[CONFIG_KEY].models
    if not models:
        metafunc.parametrize("model_spec", [pytest.param(None, marks=pytest.mark.skip(reason=NO_MODEL))],
                             ids=["no-model"])
    else:
        metafunc.parametrize("model_spec", list(models), ids=[m.slug for m in models], scope="session")


@pytest.fixture(scope="session")
def model_lm(request: pytest.FixtureRequest, model_spec, kensa_config):
    """The model under test: the suite's ``kensa_model`` when it is the only one (loaded once for
    all suites); with several models each is loaded here, one at a time."""
    if len(kensa_config.models) == 1:
        yield request.getfixturevalue("kensa_model")
        return
    from kensa.models import load_model

    lm = load_model(model_spec, kensa_config.device)
    yield lm
    lm.close()


def test_tokenizer(model_spec, model_lm, tokenizer_snapshot):
    report = tokenizer_report(model_lm.tokenizer, load_probes(),
                              f"{model_spec.slug} ({model_lm.spec.args.as_harness_string(model_spec.source)})")
    check(tokenizer_snapshot, report, f"the tokenizer of {model_spec.slug}")


def test_round_trip(model_spec, model_lm):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    specials = [t for t in model_lm.tokenizer.all_special_tokens if t]
    if METASPACE in "".join(model_lm.tokenizer.convert_ids_to_tokens(model_lm.tok_encode("a b"))):
        specials.append(METASPACE)
    japanese = st.characters(codec="utf-8", categories=("Lo", "Lm", "Nd", "Po", "Ps", "Pe", "Zs", "Sm", "So"))
    pieces = st.one_of(
        st.text(st.sampled_from("あいうえおかがきぎくぐけげこごさざしじすずせぜそぞたちつてとなにぬねのはばぱまみむめも"
                                "やゆよらりるれろわをんアイウエオカガキクケコサシスセソタチツテトナニヌネノハバパ"
                                "ヴーｶﾞｱｲｳ々〜～、。「」『』！？（）：日本語東京大学試験問題答含意矛盾中立"), max_size=8),
        st.text(japanese, max_size=4),
        st.sampled_from([" ", "  ", "\n", "\n\n", "\r\n", "\t", "\u3000", "<NL>", " はい", "123", "abc", "😀", "👍🏽"]),
        st.text(st.characters(codec="utf-8"), max_size=3),
    )
    texts = st.lists(pieces, max_size=8).map("".join).filter(lambda s: not any(t in s for t in specials))

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(texts)
    def round_trip(text: str) -> None:
        ids = model_lm.tok_encode(text)
        assert model_lm.tok_decode(ids) == text, f"ids {ids}, pieces {model_lm.tokenizer.convert_ids_to_tokens(ids)}"

    round_trip()
