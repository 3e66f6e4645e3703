"""The quiz tables across sessions and machines (records per model in each results folder, merged by
``python -m kensa quiz report``), the refusal of mixed budgets, and the plot's font, order and axes."""

from __future__ import annotations

import warnings

import pytest

from kensa.cli.main import main
from kensa.report.quiz import (QuizReportError, category_order, draw_figure, quiz_markdown, read_records,
                               write_records)


def record(model, category, score, *, machine="dev5", mode="gen", version="0.2", total=3.2, n=16, budget=32,
           set_="fixtures"):
    return {"model": model, "model_slug": model.replace("/", "__"), "task_id": f"quiz_{set_}_{category}_{mode}-1.0-{version}",
            "set": set_, "set_label": "kensa fixtures", "category": category, "mode": mode, "prompt_version": version,
            "prompt_name": "quiz-eval", "form": "", "n": n, "score": score, "unparseable_rate": 0.25,
            "late_answer_rate": 0.0625,
            "latency": {"n": n, "timed": n, "cached": 0, "total_seconds": total, "mean_seconds": total / n,
                        "p50_seconds": total / n, "p95_seconds": total / n},
            "environment": {"machine": machine, "hardware": "NVIDIA A100", "dtype": "bfloat16", "backend": "hf",
                            "batch_size": "4"},
            "until": ["\n\n", "###"], "max_new_tokens": budget, "load_seconds": 1.0, "drawn": None, "left_out": []}


def test_sessions_into_one_folder_keep_every_model(tmp_path):
    write_records(tmp_path, [record("tiny", "アニメ", 0.1875)])
    write_records(tmp_path, [record("tiny-llama", "アニメ", 0.3125, total=5.0)])  # a later session, another model
    records = read_records([tmp_path])
    assert sorted(r["model"] for r in records) == ["tiny", "tiny-llama"]
    text = quiz_markdown(records)
    table = text[text.index("### アニメ"):].splitlines()
    assert table[2] == "| Model | Environment | Score | Latency | Unparseable | Late answer |"
    # sorted by score, at full precision; Latency the genre's total seconds with s/question beside it
    assert table[4].startswith("| tiny-llama | dev5 · NVIDIA A100 · bfloat16 · hf · batch 4 | 0.3125 | 5.00 s (0.3125 s/question) |")
    assert table[5].startswith("| tiny | dev5 ")


def test_report_merges_folders_from_machines_headline_first(tmp_path, capsys):
    dev5, dev6 = tmp_path / "dev5", tmp_path / "dev6"
    write_records(dev5, [record("a", "芸能", 0.5), record("a", "芸能", 0.4, mode="loglik", version="0.1")])
    write_records(dev6, [record("b", "芸能", 0.123456789, machine="dev6"), record("b", "学問", 0.7, machine="dev6")])
    out = tmp_path / "quiz.md"
    assert main(["quiz", "report", str(dev5), str(dev6), "--out", str(out), "--plot", str(tmp_path / "q.png")]) == 0
    text = out.read_text(encoding="utf-8")
    assert "0.123456789" in text and "dev6 · NVIDIA A100" in text and (tmp_path / "q.png").stat().st_size > 0
    assert text.index("## generation, prompt 0.2") < text.index("### 芸能") < text.index("### 学問") \
        < text.index("## Other modes and prompts") < text.index("### log-likelihood, prompt 0.1")


def test_a_genre_under_different_budgets_is_refused(tmp_path, capsys):
    write_records(tmp_path / "x", [record("a", "芸能", 0.5)])
    write_records(tmp_path / "y", [record("b", "芸能", 0.5, budget=64)])
    with pytest.raises(QuizReportError, match="different budgets or stops .*at most 32 new tokens.*at most 64"):
        quiz_markdown(read_records([tmp_path / "x", tmp_path / "y"]))
    assert main(["quiz", "report", str(tmp_path / "x"), str(tmp_path / "y")]) == 2
    assert "refused" in capsys.readouterr().err
    assert main(["quiz", "report", str(tmp_path / "empty")]) == 2


def test_the_plot_titles_any_category_in_its_script_in_table_order_with_axes_from_zero():
    records = [record("a", c, s) for c, s in [("スポーツ", 0.12), ("芸能", 0.14), ("ことわざ・慣用句", 0.9), ("学問", 0.5)]]
    assert [c for _, c in category_order(records)] == ["芸能", "学問", "スポーツ", "ことわざ・慣用句"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = draw_figure(records)
        fig.canvas.draw()  # renders the text: a glyph the font lacks warns here
    missing = [str(w.message) for w in caught if "missing from" in str(w.message).lower()]
    assert not missing, missing
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["芸能 (fixtures)", "学問 (fixtures)", "スポーツ (fixtures)",
                                               "ことわざ・慣用句 (fixtures)"]
    assert all(ax.get_ylim() == (0, 1) and ax.get_xlim()[0] == 0 for ax in axes)
