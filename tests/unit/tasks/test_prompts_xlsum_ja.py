"""XL-Sum-ja (spec 3.6, 4.2): prompts character for character for every prompt version, the
article truncation of ``XLSumJa.preprocess_ctx`` on a fake model whose tokens are characters,
the generation budget, ROUGE-2 scoring, and the CSV loader's errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.data import DataSource, Split
from kensa.errors import DataError, KensaError
from kensa.metrics.rouge import bootstrap_mid
from kensa.run.generation import evaluate_generation
from kensa.tasks.render import prepare_generation
from kensa.tasks.jglue.xlsum_ja import DATASET, TASK, read_xlsum_csv, truncate_articles
from tests.helpers import SHARED_DATA, CharLM

VARIANTS = {v.template.version: v for v in TASK.variants()}
VERSIONS = ("0.0", "0.3", "0.4", "0.5", "0.6")

ALPACA = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
LLAMA = "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
INSTR = "与えられたニュース記事を要約してください。"


def row(i, text, summary):
    return {"id": f"id-{i}", "url": f"https://example.com/{i}", "title": f"T{i}", "summary": summary, "text": text}


QUERY = row(9, "記事Q。二文目。", "要約Q。")
SHOT = row(1, "記事S。", "要約S。")

EXPECTED_0SHOT = {
    "0.0": f"{INSTR}\n\nニュース記事:記事Q。二文目。\n要約:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\nニュース記事:記事Q。二文目。\n\n### 応答:\n",
    "0.4": f"ユーザー: {INSTR}<NL>システム: 分かりました。<NL>ユーザー: ニュース記事:記事Q。二文目。<NL>システム: ",
    "0.5": f"ユーザー: {INSTR}\nシステム: 分かりました。\nユーザー: ニュース記事:記事Q。二文目。\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\nニュース記事:記事Q。二文目。 [/INST] ",
}

EXPECTED_1SHOT = {
    "0.0": f"{INSTR}\n\nニュース記事:記事S。\n要約:要約S。\n\nニュース記事:記事Q。二文目。\n要約:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\nニュース記事:記事S。\n\n### 応答:\n要約S。\n\n"
                    f"### 指示:\n{INSTR}\n\n### 入力:\nニュース記事:記事Q。二文目。\n\n### 応答:\n",
    "0.4": f"ユーザー: {INSTR}<NL>システム: 分かりました。<NL>ユーザー: ニュース記事:記事S。<NL>システム: 要約S。<NL>"
           "ユーザー: ニュース記事:記事Q。二文目。<NL>システム: ",
    "0.5": f"ユーザー: {INSTR}\nシステム: 分かりました。\nユーザー: ニュース記事:記事S。\nシステム: 要約S。\n"
           "ユーザー: ニュース記事:記事Q。二文目。\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\nニュース記事:記事S。 [/INST] 要約S。 </s><s>[INST] "
                   f"{INSTR}\n\nニュース記事:記事Q。二文目。 [/INST] ",
}


def render(version, shots, query=QUERY):
    v = VARIANTS[version]
    return v.template.context([v.view(s) for s in shots], v.view(query))


@pytest.mark.parametrize("version", VERSIONS)
def test_prompts(version):
    assert render(version, []) == EXPECTED_0SHOT[version]
    assert render(version, [SHOT]) == EXPECTED_1SHOT[version]


@pytest.mark.parametrize("version", VERSIONS)
def test_prepared_request_with_room_to_spare(version):
    (doc,) = prepare_generation(VARIANTS[version], Split([QUERY], "mem"), Split([SHOT], "mem"), 1, None, CharLM())
    assert doc.prompt == EXPECTED_1SHOT[version]  # fits: the truncation leaves it alone
    assert doc.until == (("<NL>",) if version == "0.4" else ("\n",))
    assert doc.max_new_tokens == len("要約Q。") + 10
    assert doc.shot_ids == ["id-1"] and doc.golds == ["要約Q。"]


def test_task_shape():
    assert [v.task_id for v in TASK.variants()] == [f"xlsum_ja-1.0-{v}" for v in VERSIONS]
    assert (TASK.eval_split, TASK.fewshot_split, TASK.num_fewshot) == ("test", "train", 1)
    assert TASK.metrics == ("rouge2", "rouge2_mecab") and TASK.dataset.hub_id == "mkshing/xlsum_ja"


# --- truncation (preprocess_ctx) ---------------------------------------------------------------

LONG = row(2, "一文目です。二文目です。三文目です。", "要約L。")


def fit(version, shots, budget, query=LONG, lm=None):
    return truncate_articles(render(version, shots, query), VARIANTS[version].template, budget, lm or CharLM())


def test_truncation_keeps_whole_sentences_and_appends_the_separator():
    # One segment (the description is kept aside, uncounted): "ニュース記事:一文目です。二文目です" is 18
    # characters, with the third sentence 24 > 20.
    out = fit("0.0", [], 20)
    assert out == f"{INSTR}\n\nニュース記事:一文目です。二文目です。\n要約:"
    # 24: all three fit; the cut falls before the last piece ("\n"), which gives back the whole article.
    assert len(render("0.0", [], LONG)) > 24 and fit("0.0", [], 24) == render("0.0", [], LONG)


def test_truncation_splits_the_budget_over_the_segments_rinna():
    # 0.4: the instruction turn is a segment too (27 chars before "<NL>システム: "), so 3 segments share 81.
    out = fit("0.4", [SHOT], 81)
    assert out == (f"ユーザー: {INSTR}<NL>システム: 分かりました。<NL>ユーザー: ニュース記事:記事S。<NL>システム: 要約S。<NL>"
                   "ユーザー: ニュース記事:一文目です。二文目です。<NL>システム: ")  # "。<NL><NL>" collapsed
    assert "<NL><NL>" not in out
    out5 = fit("0.5", [SHOT], 81)
    assert out5.endswith("ユーザー: ニュース記事:一文目です。二文目です。\n\nシステム: ")  # no collapse for "\n"
    # With 23 tokens a segment, the instruction turn itself is hard-cut (as the harness does).
    assert fit("0.5", [SHOT], 70).startswith("ユーザー: 与えられたニュース記事を要約してく\n\nシステム: 分かりました。\nユーザー: ")


SUMMARY_MARKER = {"0.0": "\n要約:", "0.3": "。\n### 応答:\n", "0.4": "<NL>システム: ", "0.5": "\nシステム: ",
                  "0.6": " [/INST] "}


# Budgets at which each version's query keeps one or two of its three sentences: the article marker
# (the whole instruction block in 0.3, the instruction in 0.6) counts towards a segment's tokens.
@pytest.mark.parametrize(("version", "budget"), [("0.0", 40), ("0.3", 110), ("0.4", 70), ("0.5", 70), ("0.6", 80)])
def test_truncated_prompt_keeps_markers_summaries_and_sentence_ends(version, budget):
    long_shot = row(3, "ショット一。ショット二。ショット三。ショット四。", "要約S。")
    full = render(version, [long_shot])
    out = fit(version, [long_shot], budget)
    assert len(out) < len(full)
    sep = "<NL>" if version == "0.4" else "\n"
    assert out.count("要約S。") == 1 and out.startswith(VARIANTS[version].template.description[:8])
    assert out.endswith(SUMMARY_MARKER[version])
    assert "。" + sep in out  # a cut article ends its last kept sentence with "。" + SEP
    assert "一文目です" in out and "三文目です" not in out and "ショット四" not in out  # whole sentences only


def test_article_parts_fit_the_per_segment_budget_but_the_prompt_may_not():
    """The harness counts only the article part of each segment (marker included), not the description,
    the summaries or the appended "。" + SEP: the truncated prompt can still exceed the budget."""
    out = fit("0.0", [SHOT], 40)
    articles = re.findall(r"(ニュース記事:.*?)\n?要約:", out, flags=re.DOTALL)
    assert [a.rstrip("。") for a in articles] == ["ニュース記事:記事S", "ニュース記事:一文目です。二文目です"]
    assert all(len(a.rstrip("。")) <= 40 // 2 for a in articles)
    assert len(out) > 40


def test_a_first_sentence_longer_than_the_budget_is_cut_by_tokens():
    out = fit("0.0", [], 10, query=row(4, "とても長い一文目の文章です。二文目。", "要約。"))
    assert out == f"{INSTR}\n\nニュース記事:とても\n要約:"  # 10 tokens, then SEP without "。"


def test_the_cut_decodes_with_the_models_tokenizer():
    class Tokenizer:
        def decode(self, ids, skip_special_tokens=False):
            assert skip_special_tokens
            return "".join(map(chr, ids)).upper()

    class HFLike:  # no tok_decode: the backend's tokenizer decodes, as the harness's does
        name = "hf-like"
        tok_encode = CharLM.tok_encode
        tokenizer = Tokenizer()

    query = row(4, "abcdefghijk。x。", "s")
    assert fit("0.0", [], 9, query=query, lm=HFLike()) == f"{INSTR}\n\nニュース記事:AB\n要約:"
    HFLike.tokenizer = None
    with pytest.raises(KensaError, match="cannot decode"):
        fit("0.0", [], 9, query=query, lm=HFLike())


def test_rinna_collapses_nl_pairs_even_when_the_prompt_fits():
    query = row(5, "A<NL><NL>B。", "s")
    assert fit("0.4", [], 10_000, query=query).count("A<NL>B。") == 1
    assert "A<NL><NL>B。" in fit("0.0", [], 10_000, query=query)


def test_a_marker_inside_an_article_fails_as_in_the_harness():
    query = row(6, "前置き。要約:本文。続き。", "s")
    assert fit("0.0", [], 10_000, query=query) == render("0.0", [], query)  # fits: untouched
    with pytest.raises(KensaError, match="summary markers"):
        fit("0.0", [], 12, query=query)


SENTENCE = st.text(alphabet="あいうえおかきく", min_size=1, max_size=6)


def cut_as_the_harness_may(article: str, whole: str, per: int) -> bool:
    """``article`` is ``whole`` (the text before the summary marker) kept whole, cut after its m-th
    ``。`` piece (then ``。`` + SEP), or, when even the first piece is too long, its first ``per`` tokens + SEP."""
    pieces = whole.split("。")
    if article == whole and len(whole) <= per:
        return True
    for m in range(1, len(pieces)):  # a cut before the last piece "\n" gives back the whole text too
        if article == "。".join(pieces[:m]) + "。\n":
            return len("。".join(pieces[:m])) <= per < len("。".join(pieces[: m + 1]))
    return article == pieces[0][:per] + "\n" and len(pieces[0]) > per


@settings(max_examples=200)
@given(st.lists(SENTENCE, min_size=1, max_size=6), st.lists(SENTENCE, min_size=1, max_size=4),
       st.integers(min_value=0, max_value=80))
def test_truncation_property_0_0(query_sentences, shot_sentences, budget):
    query = row(7, "。".join(query_sentences) + "。", "要約Q。")
    shot = row(8, "。".join(shot_sentences) + "。", "要約S。")
    full = render("0.0", [shot], query)
    out = fit("0.0", [shot], budget, query=query)
    if len(full) <= budget:
        assert out == full
        return
    desc = f"{INSTR}\n\n"
    assert out.startswith(desc)
    first, second, rest = out[len(desc):].split("要約:")  # two segments, each closed by the summary marker
    assert second.startswith("要約S。\n\n") and rest == ""  # the shot's summary and separator are kept
    for article, r in ((first, shot), (second.removeprefix("要約S。\n\n"), query)):
        assert cut_as_the_harness_may(article, f"ニュース記事:{r['text']}\n", budget // 2), (article, budget)


# --- generation budget and scoring --------------------------------------------------------------


def test_max_new_tokens_is_the_summary_length_plus_ten():
    lm = CharLM()
    assert TASK.max_new_tokens(QUERY, lm) == 4 + 10
    assert TASK.max_new_tokens({**QUERY, "summary": "x" * 50}, lm) == 60


def test_score_is_rouge2_f_times_100_on_both_tokenizers():
    lm = CharLM()
    assert TASK.score("要約Q。", QUERY, lm) == {"rouge2": 100.0, "rouge2_mecab": 100.0}
    assert TASK.score("", QUERY, lm) == {"rouge2": 0.0, "rouge2_mecab": 0.0}
    # char bigrams of 今日は晴れ / 今日は雨: 2 common, P 2/3, R 2/4; MeCab (今日 は 晴れ / 今日 は 雨): 1 of 2 each.
    got = TASK.score("今日は雨", {**QUERY, "summary": "今日は晴れ"}, lm)
    assert got["rouge2"] == pytest.approx(100 * 4 / 7)
    assert got["rouge2_mecab"] == pytest.approx(50.0)


def test_end_to_end_on_the_fixtures():
    eval_split, pool = TASK.load(DataSource.fixtures())
    golds = {r["text"]: r["summary"] for r in eval_split.rows}

    def answer(request):
        text = request.context.rsplit("ニュース記事:", 1)[1].split("\n要約:")[0]
        return golds[text] if len(text) % 2 else golds[text][:5]

    lm = CharLM(answer)
    run = evaluate_generation(VARIANTS["0.0"], lm, eval_split, pool, 1)
    assert run.n == 24 and len(lm.requests) == 24
    assert all(r.until == ("\n",) for r in lm.requests)
    assert [r.max_new_tokens for r in lm.requests] == [len(answer_gold(r, golds)) + 10 for r in lm.requests]
    per_doc = [s["rouge2"] for s in run.samples]
    assert set(per_doc) != {100.0} and 100.0 in per_doc
    assert run.metrics["rouge2"] == bootstrap_mid(per_doc)
    assert run.metrics["rouge2_mecab"] == bootstrap_mid([s["rouge2_mecab"] for s in run.samples])
    assert all(len(s["fewshot_ids"]) == 1 and s["fewshot_ids"][0].startswith("kensa-train-") for s in run.samples)


def answer_gold(request, golds):
    return golds[request.context.rsplit("ニュース記事:", 1)[1].split("\n要約:")[0]]


# --- data ----------------------------------------------------------------------------------------


def test_fixtures():
    eval_split, pool = TASK.load(DataSource.fixtures())
    assert eval_split.source.endswith("fixtures/xlsum_ja/data/test.csv") and len(eval_split.rows) == 24
    assert pool.source.endswith("fixtures/xlsum_ja/data/train.csv") and len(pool.rows) == 8
    rows = eval_split.rows + pool.rows
    assert len({r["id"] for r in rows}) == len({r["summary"] for r in rows}) == len(rows)
    for r in rows:
        assert 3 <= r["text"].count("。") <= 5 and r["text"].endswith("。")
        assert r["summary"].count("。") == 1 and r["summary"].endswith("。")
        for marker in ("ニュース記事:", "要約:", "ユーザー: ", "システム: ", "### ", "[/INST]", "<NL>", "\n"):
            assert marker not in r["text"] + r["summary"]


def write(tmp_path, test_text, train_text=None):
    d = tmp_path / "xlsum_ja" / "data"
    d.mkdir(parents=True)
    (d / "test.csv").write_text(test_text, encoding="utf-8")
    (d / "train.csv").write_text(train_text or "id,summary,text\nt1,要約。,本文。\n", encoding="utf-8")
    return DataSource.local(tmp_path)


HEADER = "id,url,title,summary,text\n"
GOOD = 'a1,https://x/a1,T,要約一。,"本文一。\n二行目。"\n'  # a quoted field spanning two lines


def test_csv_reader_reads_quoted_multiline_fields(tmp_path):
    eval_split, pool = TASK.load(write(tmp_path, HEADER + GOOD + "a2,u,T,要約二。,本文二。\n"))
    assert [r["text"] for r in eval_split.rows] == ["本文一。\n二行目。", "本文二。"]
    assert eval_split.lines == [2, 4] and len(pool.rows) == 1


@pytest.mark.parametrize(("body", "where"), [
    (HEADER + GOOD + "a2,u,T\n", "test.csv, row 4, field 'summary'"),  # a row missing its summary
    (HEADER + GOOD + "a2,u,T,,本文。\n", "test.csv, row 4, field 'summary'"),  # empty summary
    (HEADER + GOOD + "a2,u,T,要約。,\n", "test.csv, row 4, field 'text'"),  # empty article
    ("id,url,title,text\na1,u,T,本文。\n", "test.csv, row 1, field 'summary'"),  # no summary column
    (HEADER + GOOD + "a2,u,T,要約。,本文。,extra\n", "test.csv, row 4: the row has 6 columns"),
    (HEADER + 'a1,u,T,要約。,"unterminated\n', "test.csv, row 2"),
    ("", "test.csv: the file holds no header row"),
    (HEADER, "test.csv: the file holds no rows"),
])
def test_bad_rows_are_data_errors(tmp_path, body, where):
    with pytest.raises(DataError) as err:
        TASK.load(write(tmp_path, body))
    assert where in str(err.value)


def test_non_utf8_is_a_data_error(tmp_path):
    path = tmp_path / "test.csv"
    path.write_bytes((HEADER + GOOD).encode() + "a2,u,T,要約。,本文。\n".encode("cp932"))
    with pytest.raises(DataError, match=r"row 4: not UTF-8"):
        read_xlsum_csv(DATASET, path)


def test_missing_local_files_say_where_to_get_them(tmp_path):
    with pytest.raises(DataError, match="mkshing/xlsum_ja"):
        TASK.load(DataSource.local(tmp_path))


def test_real_data():
    if not (SHARED_DATA / "xlsum_ja/data/test.csv").exists():
        pytest.skip(f"XL-Sum ja (CC BY-NC-SA) is not in {SHARED_DATA}; put the Hub's mkshing/xlsum_ja under "
                    "xlsum_ja/ there to run this")
    eval_split, pool = TASK.load(DataSource.local(SHARED_DATA))
    assert len(eval_split.rows) == 766 and len(pool.rows) == 4215
    for version in VERSIONS:
        docs = prepare_generation(VARIANTS[version], eval_split, pool, 1, 10, CharLM(max_length=2048))
        assert all(d.prompt.startswith(VARIANTS[version].template.description[:8]) for d in docs)
