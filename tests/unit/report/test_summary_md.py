"""summary.md for a pull request: verdict first, failures with three example flips, the rest folded."""

from __future__ import annotations

import json

from kensa.gate.verdicts import Check
from kensa.report.summary_md import summary_markdown


def _flips(path, count):
    records = [{"metric": "acc", "doc_id": i, "key": f"q{i}", "baseline": 1.0, "candidate": 0.0,
                "prompt": "指示 " * 200 + f"質問{i}", "continuations": ["犬", "猫"], "pred": 1, "gold": 0}
               for i in range(count)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_failures_come_first_with_three_trimmed_examples_and_the_rest_is_folded(tmp_path):
    flips = _flips(tmp_path / "flips_t.jsonl", 5)
    rows = [Check("m", "b", "t", "acc", "fail", "dropped", n=10, score=0.5, base=1.0, delta=-0.5,
                  details={"flip_report": str(flips)}),
            Check("m", "b", "u", "acc", "pass", n=10, score=0.9, base=0.9, delta=0.0)]
    text = summary_markdown(rows, "kensa gate: FAIL (1 of 2 rows)", notes=["a note"])
    assert text.startswith("**kensa gate: FAIL (1 of 2 rows)**")
    assert text.index("### Failing rows (1)") < text.index("a note") < text.index("<details>")
    assert "5 documents got worse on acc" in text and text.count("- doc `q") == 3
    assert "candidate answered **猫**, gold **犬**" in text and "…" in text and "質問0" in text
    assert "指示 " * 100 not in text  # the prompt is trimmed to its end
    folded = text[text.index("<details>"):]
    assert "| m | u | acc |" in folded and "| m | t | acc |" in folded and folded.rstrip().endswith("</details>")


def test_a_passing_session_has_no_failure_section(tmp_path):
    rows = [Check("m", "b", "u", "acc", "pass", n=10, score=0.9, base=0.9, delta=0.0)]
    text = summary_markdown(rows, "kensa gate: PASS")
    assert "Failing rows" not in text and text.index("**kensa gate: PASS**") == 0 and "<details>" in text


def test_changed_snapshots_are_linked_relative_to_the_summary_with_the_command_that_shows_their_diff(tmp_path):
    root = tmp_path / "repo"
    snap = root / "suites" / "jglue" / "__snapshots__" / "t" / "test_prompt[jcqa-0.3].prompt.txt"
    snap.parent.mkdir(parents=True)
    snap.write_text("x\n", encoding="utf-8")
    diff = "\n".join(["--- snapshot", "+++ now", "@@ -1 +1 @@", "-選んでください", "+選んで下さい"] + ["+x"] * 70)
    snapshots = [{"path": str(snap), "what": "the prompts of jcqa-0.3", "status": "changed", "diff": diff,
                  "nodeid": "suites/jglue/test_prompt_snapshots.py::test_prompt[jcqa-0.3]"},
                 {"path": str(snap.with_name("new.prompt.txt")), "what": "the prompts of new", "status": "written",
                  "nodeid": "n"}]
    rows = [Check("m", "b", "u", "acc", "pass", n=10, score=0.9, base=0.9, delta=0.0)]
    text = summary_markdown(rows, "kensa gate: PASS", snapshots=snapshots, root=root, here=root / "results")
    assert text.index("**kensa gate: PASS**") < text.index("### Snapshots changed (2)") < text.index("<details>")
    shown = "suites/jglue/__snapshots__/t/test_prompt[jcqa-0.3].prompt.txt"
    assert ("- the prompts of jcqa-0.3: [suites/jglue/__snapshots__/t/test_prompt\\[jcqa-0.3\\].prompt.txt]"
            "(../suites/jglue/__snapshots__/t/test_prompt%5Bjcqa-0.3%5D.prompt.txt)") in text
    assert f"then review `git diff -- '{shown}'`" in text
    assert "`pytest 'suites/jglue/test_prompt_snapshots.py::test_prompt[jcqa-0.3]' --snapshot-update`" in text
    assert "  -選んでください" in text and "  +選んで下さい" in text and "(15 more lines)" in text
    assert "a new file written by --snapshot-update" in text
    assert text.index("**1 snapshot test(s) failed: the session fails") < text.index("### Snapshots changed")
    assert "Snapshots changed" not in summary_markdown(rows, "kensa gate: PASS")


def test_sequential_tasks_show_the_documents_scored_and_the_look_they_stopped_at():
    def row(task, metric, decision, look, scored, n=1000):
        seq = {"decision": decision, "reason": "...", "look": look, "looks": 10, "scored": scored, "n": n,
               "margin": 0.03, "stopped_early": scored < n}
        return Check("m", "b", task, metric, decision, "sequential: ...", n=scored, details={"sequential": seq})

    rows = [row("jcqa", "acc", "pass", 2, 200), row("jcqa", "acc_norm", "pass", 4, 400),
            row("jnli", "acc", "fail", 3, 300), Check("m", "b", "jsts", "pearson", "pass", n=50)]
    text = summary_markdown(rows, "kensa gate: FAIL (1 of 4 rows)")
    table = text[text.index("### Sequential gate: documents scored"):]
    assert "| m | jcqa | 400 | 1,000 | 4/10 | acc pass (early); acc_norm pass (early) |" in table
    assert "| m | jnli | 300 | 1,000 | 3/10 | acc fail (early) |" in table
    assert "jsts" not in table.split("<details>")[0]
    assert "Sequential gate" not in summary_markdown(rows[3:], "kensa gate: PASS")
