"""The typed results contract (nutrimeta.results): schema in sync, lossless JSON, every shipped
results file valid, drift bugs that cannot come back, and a stage layout without cycles."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nutrimeta import results as R
from nutrimeta.migrate import _migrate_probabilities
from nutrimeta.report import render_evidence_base
from nutrimeta.report.render import headline

ROOT = Path(__file__).parent.parent
SRC = ROOT / "src" / "nutrimeta"
FIXTURES = Path(__file__).parent / "fixtures" / "report"
BUNDLE = FIXTURES / "zinc_testosterone.json"
SCHEMA = ROOT / "docs" / "results.schema.json"


def _bundle() -> dict[str, Any]:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


def test_committed_schema_is_in_sync() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == R.schema_text(), (
        "docs/results.schema.json is stale: run `python -m nutrimeta.results`")


def test_json_round_trip_is_lossless() -> None:
    b = R.Bundle.model_validate(_bundle())
    text = R.to_json(b)
    again = R.Bundle.model_validate_json(text)
    assert again == b
    assert R.to_json(again) == text
    assert json.loads(text) == _bundle()  # the fixture is stored in canonical form


@pytest.mark.parametrize("path", sorted(ROOT.glob("releases/*/*/results.json")),
                         ids=lambda p: "/".join(p.parts[-3:-1]))
def test_saved_releases_validate(path: Path) -> None:
    saved = R.ReportResults.model_validate_json(path.read_text(encoding="utf-8"))
    assert saved.bundle.schema_version == R.SCHEMA_VERSION


def test_generated_reports_validate() -> None:
    """Reports rendered in this checkout (present after `nutrimeta analysis`; every report the
    tests render is validated where it is rendered)."""
    for path in sorted(ROOT.glob("reports/*/results.json")):
        R.ReportResults.model_validate_json(path.read_text(encoding="utf-8"))


def test_migration_turns_key_strings_into_statements() -> None:
    old = {"mu": 1}
    probs = _migrate_probabilities({"P(mu < 0)": 0.9, "P(mu < -0.5)": 0.4,
                                      "P(effect_deficient better than effect_replete)": 0.7},
                                     "decrease")
    del old
    assert probs == [
        {"quantity": "mu", "relation": "<", "threshold": 0.0, "value": 0.9},
        {"quantity": "mu", "relation": "<", "threshold": -0.5, "value": 0.4},
        {"quantity": "deficient_minus_replete", "relation": "<", "threshold": 0.0,
         "value": 0.7}]
    with pytest.raises(ValueError, match="P\\(mu >= 0\\)"):
        _migrate_probabilities({"P(mu >= 0)": 0.5}, "increase")


def test_probability_text_and_lookup() -> None:
    m = R.ModelResult(model="x", description="", status="ok", k=3, probabilities=[
        R.Probability(quantity="mu", relation="<", threshold=-0.25, value=0.8)])
    assert m.probabilities[0].text == "P(mu < -0.25)"
    assert m.probability("mu", "<", -0.25) == 0.8
    assert m.find_probability("mu", ">", 0.0) is None
    with pytest.raises(KeyError, match="P\\(mu > 0\\)"):
        m.probability("mu", ">", 0.0)


@pytest.mark.parametrize(("p", "k", "verdict"), [
    (0.95, 3, "supported"), (0.9499, 3, "uncertain"), (0.49, 3, "not supported"),
    (0.5, 3, "uncertain"), (0.99, 2, "uncertain"), (0.1, 2, "uncertain"), (None, 9, "uncertain")])
def test_verdict_rule(p: float | None, k: int, verdict: str) -> None:
    assert R.VERDICT_RULE.verdict(p, k)[0] == verdict


# --------------------------------------------------------------------------- drift bugs


def _every_relation(bundle: dict[str, Any]) -> dict[str, Any]:
    """The fixture with a second outcome whose benefit is a decrease (P(mu < 0), P(mu < -MID))
    beside the increase outcome (P(mu > 0), P(mu > MID))."""
    inc = bundle["outcomes"]["total_testosterone"]
    dec = json.loads(json.dumps(inc))
    dec.update(label="Fasting insulin (synthetic)", beneficial="decrease", mid=2.0)
    for m in dec["models"].values():
        for pr in m["probabilities"]:
            if pr["quantity"] == "mu":
                pr["relation"] = "<"
                pr["threshold"] = -pr["threshold"] if pr["threshold"] else 0.0
                if pr["threshold"]:
                    pr["threshold"] = -2.0
    bundle["outcomes"]["decrease_outcome"] = dec
    return bundle


def test_render_with_every_probability_relation(tmp_path: Path) -> None:
    bundle = _every_relation(_bundle())
    # enough trials for the small-study section to be shown (it is withheld below 10)
    from nutrimeta.report.summary import MIN_TRIALS_FUNNEL

    bundle["outcomes"]["total_testosterone"]["k"] = MIN_TRIALS_FUNNEL
    path = tmp_path / "results" / "zinc_testosterone.json"
    path.parent.mkdir()
    path.write_text(json.dumps(bundle), encoding="utf-8")
    typed = R.load_bundle(path)
    inc, dec = headline(typed, "total_testosterone"), headline(typed, "decrease_outcome")
    p_inc = typed.outcomes["total_testosterone"].models["random_effects"].probability(
        "mu", ">", 0.0)
    p_dec = typed.outcomes["decrease_outcome"].models["random_effects"].probability(
        "mu", "<", 0.0)
    assert "P(mu > 0)" in inc["text"] and "P(mu < 0)" in dec["text"]
    effects = pd.read_csv(FIXTURES / "effects.csv")
    studies = pd.read_csv(FIXTURES / "studies.csv")
    out = tmp_path / "report"
    render_evidence_base(path, effects, studies, pd.read_csv(FIXTURES / "syntheses.csv"), out)
    md = (out / "report.md").read_text(encoding="utf-8")
    from nutrimeta.report.fmt import fmt_prob, fmt_prob_eq

    assert f"P(mu > 0) {fmt_prob_eq(p_inc)}" in md
    assert f"P(mu < 0) {fmt_prob_eq(p_dec)}" in md
    for statement in ("P(mu > 0)", "P(mu > 1)", "P(mu < 0)", "P(mu < -2)", "P(slope < 0)"):
        assert f"| {statement} |" in md, statement
    assert "NR" not in md.replace("NRC", "")
    # Egger intercept printed from the field the fit stage writes
    ss = typed.outcomes["total_testosterone"].small_study
    assert ss.intercept is not None
    from nutrimeta.report.fmt import fmt

    assert f"intercept {fmt(ss.intercept)}," in md
    # the verdict rule's numbers come from the bundle
    rule = typed.verdict_rule
    assert (f"at least {rule.supported_at} and at least {rule.min_trials} trials" in md)
    # the citation names the data version the results were computed from
    version = typed.provenance.data_version
    cite = md[md.index("## How to cite"):]
    assert f"version {version}." in cite
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert R.ReportResults.model_validate(results).bundle == typed
    assert fmt_prob(p_dec)


# --------------------------------------------------------------------------- layout


def _imports(path: Path) -> set[str]:
    """Modules of the package imported anywhere in ``path`` (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        pkg = pkg.rsplit(".", 1)[0]
    out: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("nutrimeta")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[:len(parts) - node.level + (path.name == "__init__.py")]
                                + ([base] if base else []))
            if base.startswith("nutrimeta"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    modules = {".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(
        ".__init__"): p for p in SRC.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in modules and i != m}
            for m, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                found.append([*stack[stack.index(m):], m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def test_no_import_cycle() -> None:
    graph = _graph()
    assert "nutrimeta.synthesis" in graph and graph["nutrimeta.pipeline"]
    # package __init__ files re-export their children; a child importing its own package is
    # not a cycle of stages
    for m in graph:
        graph[m] = {i for i in graph[m] if not m.startswith(i + ".")}
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


#: Modules over the limit whose split is pending (engines; tracked in the issue).
LARGE_PENDING = {"exact.py", "effects.py"}


@pytest.mark.parametrize("path", sorted(p for p in SRC.rglob("*.py")
                                        if p.name not in LARGE_PENDING), ids=lambda p: p.name)
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 720, path.name
