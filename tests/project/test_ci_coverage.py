"""Every check runs in CI at least once (docs/ci.md).

A test marked ``slow`` runs only in ``make test-all``; CI (``make check``) runs the default tier, the sweep and
the tests marked ``ci`` or ``install``. So a slow test is marked ``ci`` too, or belongs to the sweep or the wheel test, or is one variant of a
parametrized test whose other variants run by default, or names here the default-tier test that makes its check.
"""

from __future__ import annotations

import ast
import re

from tests.helpers import REPO

CI_MARKS = {"sweep", "ci", "install"}  # what `make check` selects besides the default tier (Makefile's CI_SELECT)

COVERED_ELSEWHERE = {
    "test_xdist_reports_exactly_what_a_serial_run_reports":
        "test_workers.py::test_both_xdist_modes_report_exactly_what_a_serial_run_reports",
    "test_serial_and_xdist_give_the_same_scores":
        "test_workers.py::test_both_xdist_modes_report_exactly_what_a_serial_run_reports",
    # the harness end to end runs as the openorca command (ci); its 8-bit loading as test_bitsandbytes_* (ci)
    "test_the_xgen_command_runs_as_pasted_on_cpu_with_a_tiny_model":
        "test_harness_cli.py::test_the_openorca_command_runs_as_pasted_on_cpu_with_a_tiny_model",
    # a rebuild trains a T5 for minutes; the comparison by scores that judges it runs on shipped and damaged
    # copies in the default tier
    "test_a_rebuild_agrees_with_the_shipped_model_by_scores":
        "test_tiny_shipped.py::test_the_score_comparison_accepts_a_copy_and_refuses_a_damaged_model",
}


def _marks(node: ast.AST) -> set[str]:
    """The ``pytest.mark.NAME`` names used anywhere in ``node`` (decorators, params' marks=, pytestmark lists)."""
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute)
            and n.value.attr == "mark"}


def slow_only_tests() -> list[str]:
    """Tests whose every variant is slow and that neither CI's selection nor COVERED_ELSEWHERE accounts for."""
    missing = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = set().union(*(_marks(n) for n in tree.body if isinstance(n, ast.Assign)
                               and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)))
        if "slow" in module and not module & CI_MARKS:
            missing.append(f"{path.name} (pytestmark)")
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            direct = {d.attr for d in node.decorator_list if isinstance(d, ast.Attribute)}
            marks = set().union(*(_marks(d) for d in node.decorator_list))
            if "slow" in direct and not marks & CI_MARKS and node.name not in COVERED_ELSEWHERE:
                missing.append(f"{path.name}::{node.name}")
    return missing


def test_every_slow_test_runs_in_ci_or_names_where_its_check_does():
    assert slow_only_tests() == []
    for name, where in COVERED_ELSEWHERE.items():
        file, test = where.split("::")
        (path,) = (REPO / "tests").rglob(file)
        assert f"def {test}(" in path.read_text(encoding="utf-8"), (name, where)


def test_ci_runs_the_ci_selection_the_tokenizer_snapshots_and_the_gate_demonstration():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    select = re.search(r"^CI_SELECT = (.+)$", makefile, re.M).group(1)
    assert select == "not slow or " + " or ".join(sorted(CI_MARKS - {"slow"}))
    check = makefile.split("\ncheck:", 1)[1].split("\n\n", 1)[0]
    assert '-m "$(CI_SELECT)"' in check
    run = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    steps = [line.split(";", 1)[1].split("#")[0].strip() for line in run.splitlines() if line.startswith("step ")
             and ";" in line]
    assert {"make check", "make tokenizers", ".ci/gate-demo .cache/gate-demo"} <= set(steps), steps
