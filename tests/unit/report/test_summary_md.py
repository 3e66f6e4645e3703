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
