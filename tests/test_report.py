"""Tests of the report stage (nutrimeta.report), rendered from a small synthetic fixture."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nutrimeta.report import forest, grade, render_evidence_base, render_index
from nutrimeta.report.fmt import fmt, fmt_p, fmt_prob, fmt_prob_eq

FIXTURES = Path(__file__).parent / "fixtures" / "report"
BUNDLE = FIXTURES / "zinc_testosterone.json"
CROSS = FIXTURES / "cross_nutrient.json"
ARTIFACTS = Path(__file__).parent / "artifacts"


def _tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (pd.read_csv(FIXTURES / "effects.csv"), pd.read_csv(FIXTURES / "studies.csv"),
            pd.read_csv(FIXTURES / "syntheses.csv"))


def _render(bundle_path: Path, out_dir: Path) -> Path:
    effects, studies, syntheses = _tables()
    return render_evidence_base(bundle_path, effects, studies, syntheses, out_dir)


def _write_bundle(bundle: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "zinc_testosterone.json"
    path.write_text(json.dumps(bundle, indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports") / "zinc_testosterone"
    _render(BUNDLE, out)
    return out


@pytest.fixture()
def bundle() -> dict[str, Any]:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- rendering


def test_render_writes_all_outputs(rendered: Path) -> None:
    for name in ("report.html", "report.md", "results.json"):
        assert (rendered / name).stat().st_size > 0, name
    pngs = sorted(p.stem for p in (rendered / "figures").glob("*.png"))
    svgs = sorted(p.stem for p in (rendered / "figures").glob("*.svg"))
    assert pngs == svgs
    for kind in ("forest", "effect_vs_baseline", "density_by_status", "cumulative",
                 "tau_prior_posterior", "sensitivity"):
        assert f"{kind}_total_testosterone" in pngs, kind
    # Funnel plots need at least 10 trials; the fixture's outcomes have 7 and 3.
    assert not [p for p in pngs if p.startswith("funnel_")]
    for table in ("study_characteristics", "pooled_results", "not_poolable",
                  "summary_of_findings", "published_syntheses", "diagnostics", "prisma_flow",
                  "sensitivity"):
        assert (rendered / "tables" / f"{table}.csv").is_file(), table
    assert (rendered / "figures" / "forest_total_testosterone.png").read_bytes()[:4] == b"\x89PNG"
    # The report folder holds no leftovers of the atomic swap.
    assert not [p for p in rendered.parent.iterdir() if p.name.startswith(".")]


def _pooled_rows(results: dict[str, Any]) -> list[tuple[str, str, str, list[str]]]:
    """(outcome, model, quantity, formatted cells) of every pooled summary in results.json."""
    rows = []
    for oid, o in results["bundle"]["outcomes"].items():
        for mid, m in o["models"].items():
            if m["status"] != "ok":
                continue
            for q, s in m["parameters"].items():
                rows.append((oid, mid, q, [fmt(s[k]) for k in
                                           ("mean", "median", "sd", "q025", "q975")]))
            p = m["prediction"]
            rows.append((oid, mid, "prediction", [fmt(p["mean"]), "", "", fmt(p["q025"]),
                                                  fmt(p["q975"])]))
    return rows


def test_every_pooled_number_appears(rendered: Path) -> None:
    results = json.loads((rendered / "results.json").read_text(encoding="utf-8"))
    md = (rendered / "report.md").read_text(encoding="utf-8")
    page = (rendered / "report.html").read_text(encoding="utf-8")
    rows = _pooled_rows(results)
    assert len(rows) >= 8
    for oid, mid, q, cells in rows:
        md_row = f"| {mid} | ok | {results['bundle']['outcomes'][oid]['k']} |"
        assert md_row in md
        md_cells = f"| {q} | " + " | ".join(cells) + " |"
        assert md_cells in md, (oid, mid, md_cells)
        html_cells = "".join(f"<td>{html.escape(c)}</td>" for c in [q, *cells])
        assert html_cells in page, (oid, mid, html_cells)
    for o in results["bundle"]["outcomes"].values():
        for mid, m in o["models"].items():
            for pr in m["probabilities"]:
                event = f"P({pr['quantity']} {pr['relation']} {pr['threshold']:g})"
                p = pr["value"]
                assert f"| {mid} | {event} | {fmt_prob(p)} |" in md
                assert (f"<td>{html.escape(event)}</td><td>{html.escape(fmt_prob(p))}</td>"
                        in page)
    # Derived numbers (headlines, GRADE suggestions) are in results.json too.
    derived = results["derived"]
    assert {h["outcome"] for h in derived["headlines"]} == set(results["bundle"]["outcomes"])
    assert derived["summary_of_findings"][0]["domains"][0]["rule"]


def test_report_sections_present(rendered: Path) -> None:
    md = (rendered / "report.md").read_text(encoding="utf-8")
    for heading in ("## Bottom line", "## Summary of findings\n", "## At a glance",
                    "## Claims checked", "## Flow of records",
                    "## Study characteristics", "## Studies that could not be pooled",
                    "## Summary of findings (GRADE)", "## Published syntheses beside",
                    "## Methods", "## Diagnostics", "## Provenance", "## How to cite"):
        assert heading in md, heading
    assert "juniper2010" in md and "only p-value and direction reported" in md
    assert "not assessable (k<10)" in md
    assert "*suggestion:*" in md
    assert "review_a2020" in md
    assert "Trial reports found (studies.csv): 10" in md
    assert "sha256:" in md and "20261129" in md
    assert "nutrimeta contributors" in md  # from CITATION.cff
    assert "![forest_total_testosterone](figures/forest_total_testosterone.png)" in md
    assert "DIAGNOSTICS FAILED" not in md
    assert "/work/" not in md and "/tmp/" not in md


def test_changed_bundle_changes_report(rendered: Path, bundle: dict[str, Any],
                                       tmp_path: Path) -> None:
    mu = bundle["outcomes"]["total_testosterone"]["models"]["random_effects"]["parameters"]["mu"]
    assert fmt(mu["mean"]) != "1.87"
    mu["mean"] = 1.8712
    out = tmp_path / "zinc_testosterone"
    _render(_write_bundle(bundle, tmp_path / "results"), out)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md != (rendered / "report.md").read_text(encoding="utf-8")
    assert "| mu | 1.87 |" in md
    assert "<td>mu</td><td>1.87</td>" in (out / "report.html").read_text(encoding="utf-8")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    re_mu = results["bundle"]["outcomes"]["total_testosterone"]["models"]["random_effects"]
    assert re_mu["parameters"]["mu"]["mean"] == 1.8712


class _Resources(HTMLParser):
    """Collect every resource reference of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.stylesheets: list[dict[str, str | None]] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href", "data", "srcset", "poster"):
            if a.get(key):
                self.refs.append((tag, key, a[key] or ""))
        if tag == "link" and "stylesheet" in (a.get("rel") or "").lower():
            self.stylesheets.append(a)
        if tag == "img":
            self.images.append(a.get("src") or "")


def _assert_self_contained(page: str) -> _Resources:
    parser = _Resources()
    parser.feed(page)
    assert not parser.stylesheets, parser.stylesheets
    for tag, key, value in parser.refs:
        external = re.match(r"^\s*(https?:)?//", value, re.I) is not None
        if tag in ("script", "img", "link", "iframe", "source", "embed", "object", "video",
                   "audio", "input"):
            assert not external, (tag, key, value)
            assert tag != "script", "report pages need no scripts"
        if tag == "a":
            assert not value.startswith("file:"), value
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)
    assert "@import" not in page
    return parser


def test_html_is_self_contained(rendered: Path) -> None:
    page = (rendered / "report.html").read_text(encoding="utf-8")
    parser = _assert_self_contained(page)
    n_figures = len(list((rendered / "figures").glob("*.png")))
    assert len(parser.images) == n_figures
    assert "<style>" in page


def test_self_contained_check_catches_external_resources() -> None:
    with pytest.raises(AssertionError):
        _assert_self_contained('<link rel="stylesheet" href="https://cdn.example.org/a.css">')
    with pytest.raises(AssertionError):
        _assert_self_contained('<img src="https://example.org/a.png">')


def test_rendering_is_deterministic(rendered: Path, tmp_path: Path) -> None:
    out = tmp_path / "again" / "zinc_testosterone"
    _render(BUNDLE, out)
    for name in ("results.json", "report.md", "report.html"):
        assert (out / name).read_bytes() == (rendered / name).read_bytes(), name
    for fig in (rendered / "figures").iterdir():
        assert (out / "figures" / fig.name).read_bytes() == fig.read_bytes(), fig.name
    for table in (rendered / "tables").iterdir():
        assert (out / "tables" / table.name).read_bytes() == table.read_bytes(), table.name
    svg = (rendered / "figures" / "forest_total_testosterone.svg").read_text(encoding="utf-8")
    assert "<dc:date>" not in svg


def test_failed_diagnostics_banner(bundle: dict[str, Any], tmp_path: Path) -> None:
    models = bundle["outcomes"]["total_testosterone"]["models"]
    models["meta_regression_continuous"]["diagnostics"].update(
        passed=False, rhat_max=1.09, problems=["rhat_max 1.09 > 1.01", "12 divergences"])
    models["meta_regression_category"].update(status="failed", reason="sampler error")
    path = _write_bundle(bundle, tmp_path / "results")
    out = tmp_path / "reports" / "zinc_testosterone"
    _render(path, out)
    page = (out / "report.html").read_text(encoding="utf-8")
    banner = page.find('id="diagnostics-banner"')
    assert 0 < banner < page.find("<section")
    # The category model feeds the claims (bannered); the continuous one feeds no shown
    # result (listed in the diagnostics section).
    assert "DIAGNOSTICS FAILED for 1 fit(s) behind a result shown" in page
    assert "meta_regression_category (status failed): sampler error" in page
    assert "rhat_max 1.09 &gt; 1.01; 12 divergences" in page[page.find('id="failed-secondary"'):]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.index("DIAGNOSTICS FAILED") < md.index("## At a glance")
    index = render_index([path], tmp_path / "reports").read_text(encoding="utf-8")
    assert 'id="diagnostics-banner"' in index and "sampler error" in index
    assert "rhat_max 1.09" not in index


def test_no_banner_when_diagnostics_pass(rendered: Path) -> None:
    page = (rendered / "report.html").read_text(encoding="utf-8")
    assert 'id="diagnostics-banner"' not in page
    assert "All fits passed their diagnostics" in page


def test_failed_render_keeps_previous_report(rendered: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "reports" / "zinc_testosterone"
    shutil.copytree(rendered, out)
    before = (out / "report.html").read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("figure failed")

    monkeypatch.setattr(forest, "forest_plot", boom)
    with pytest.raises(RuntimeError, match="figure failed"):
        _render(BUNDLE, out)
    assert (out / "report.html").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["zinc_testosterone"]


def test_index_with_cross_nutrient(rendered: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(BUNDLE, results / BUNDLE.name)
    shutil.copy(CROSS, results / CROSS.name)
    index_path = render_index(sorted(results.glob("*.json")), tmp_path / "reports")
    page = index_path.read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert 'href="zinc_testosterone/report.html"' in page
    assert "1.32 (0.40 to 2.24)" in page  # headline pooled effect, total testosterone
    cross = json.loads(CROSS.read_text(encoding="utf-8"))
    pooled = cross["pooled_slope"]
    assert f"{fmt(pooled['mean'])} ({fmt(pooled['q025'])} to {fmt(pooled['q975'])})" in page
    assert f"P(slope &lt; 0) {html.escape(fmt_prob_eq(pooled['p_lt_0']))}" in page
    assert 'id="diagnostics-banner"' not in page
    # Without the cross-nutrient bundle the section is absent.
    (results / CROSS.name).unlink()
    page = render_index([results / BUNDLE.name], tmp_path / "reports").read_text(encoding="utf-8")
    assert 'id="cross-nutrient"' not in page


def test_minimal_bundle_renders(bundle: dict[str, Any], tmp_path: Path) -> None:
    """Optional bundle sections absent, a failed fit, an outcome without trials."""
    o = bundle["outcomes"]["free_testosterone"]
    for key in ("cumulative", "sensitivity", "tau_prior_posterior", "frequentist"):
        o.pop(key)
    o["models"]["random_effects"] = {"model": "random_effects", "description": "RE",
                                     "status": "failed", "reason": "sampler crashed", "k": 3}
    empty = {**o, "label": "TPO antibodies", "measure": "SMD", "k": 0, "k_all_designs": 0,
             "n_participants": 0, "studies": [], "models": {}, "small_study": {"k": 0}}
    bundle["outcomes"]["tpo_ab"] = empty
    for key in ("claims", "published_syntheses", "not_poolable"):
        bundle.pop(key)
    effects, studies, _ = _tables()
    out = tmp_path / "reports" / "zinc_testosterone"
    render_evidence_base(_write_bundle(bundle, tmp_path / "results"), effects.iloc[0:0],
                         studies, pd.DataFrame(), out)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "free_testosterone / random_effects (status failed): sampler crashed" in md
    assert "No claims were specified" in md
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert "forest_total_testosterone" in figures
    assert not {f for f in figures if f.endswith("tpo_ab")}
    assert "cumulative_free_testosterone" not in figures


@pytest.mark.parametrize(("where", "key"), [
    (("outcomes", "total_testosterone"), "small_study"),
    (("outcomes", "total_testosterone"), "mid"),
    (("spec", "moderator"), "cutoff"),
    (("outcomes", "total_testosterone", "models", "random_effects"), "status"),
])
def test_missing_field_fails_loudly(bundle: dict[str, Any], tmp_path: Path,
                                    where: tuple[str, ...], key: str) -> None:
    """A field the report needs and the bundle lacks is an error naming it, never "NR"."""
    block: Any = bundle
    for part in where:
        block = block[part]
    block.pop(key)
    with pytest.raises(ValueError, match=key):
        _render(_write_bundle(bundle, tmp_path / "results"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_renamed_field_fails_loudly(bundle: dict[str, Any], tmp_path: Path) -> None:
    """The Egger intercept under another name (the old ``egger_intercept``) is refused."""
    ss = bundle["outcomes"]["total_testosterone"]["small_study"]
    ss["egger_intercept"] = ss.pop("intercept")
    with pytest.raises(ValueError, match="egger_intercept"):
        _render(_write_bundle(bundle, tmp_path / "results"), tmp_path / "out")


def test_figures_leave_global_style_alone(rendered: Path) -> None:
    import matplotlib

    assert matplotlib.rcParams["svg.hashsalt"] is None
    assert matplotlib.rcParams["axes.spines.top"] is True


# --------------------------------------------------------------------------- GRADE rules


def test_grade_risk_of_bias() -> None:
    assert grade.risk_of_bias([0.6, 0.4], ["high", "low"]).downgrade == 1
    assert grade.risk_of_bias([0.3, 0.2, 0.5], ["high", "unclear", "low"]).downgrade == 0
    assert grade.risk_of_bias([0.2, 0.2, 0.6], ["low", "low", None]).downgrade == 1
    s = grade.risk_of_bias([1, 3], ["some_concerns", "low"])
    assert s.downgrade == 0 and s.suggestion == "no downgrade" and "50%" in s.rule


def test_grade_inconsistency() -> None:
    narrow = {"q025": 0.4, "q975": 2.2}
    assert grade.inconsistency(62.0, narrow, {"q025": 0.1, "q975": 2.5}).downgrade == 1
    assert grade.inconsistency(30.0, narrow, {"q025": 0.1, "q975": 2.5}).downgrade == 0
    s = grade.inconsistency(30.0, narrow, {"q025": -0.5, "q975": 3.1})
    assert s.downgrade == 1 and "prediction interval crosses 0" in s.detail
    # Both intervals cross 0: the prediction-interval criterion does not apply.
    assert grade.inconsistency(30.0, {"q025": -0.2, "q975": 1.0},
                               {"q025": -1.0, "q975": 2.0}).downgrade == 0


def test_grade_indirectness() -> None:
    assert grade.indirectness([0.7, 0.3], ["unknown", "deficient"]).downgrade == 1
    assert grade.indirectness([0.3, 0.7], ["unknown", "replete"]).downgrade == 0


def test_grade_imprecision() -> None:
    assert grade.imprecision({"q025": -0.2, "q975": 1.5}, 1.0, 800).downgrade == 1
    assert grade.imprecision({"q025": 0.2, "q975": 1.5}, 1.0, 800).downgrade == 0
    assert grade.imprecision({"q025": 0.2, "q975": 1.5}, 1.0, 399).downgrade == 1
    # Interval crosses 0 but excludes the MID: precise enough to rule out an important effect.
    assert grade.imprecision({"q025": -0.3, "q975": 0.5}, 1.0, 800).downgrade == 0
    # Negative MID (a decrease is the benefit).
    assert grade.imprecision({"q025": -150.0, "q975": 20.0}, -100.0, 900).downgrade == 1
    assert "no MID" in grade.imprecision({"q025": -1, "q975": 1}, None, 900).detail


def test_grade_publication_bias() -> None:
    assert grade.publication_bias(0.01, 7).suggestion == "not assessable (k<10)"
    assert grade.publication_bias(0.01, 7).downgrade == 0
    assert grade.publication_bias(0.05, 12).downgrade == 1
    assert grade.publication_bias(0.10, 12).downgrade == 0
    assert "p = 0.250" in grade.publication_bias(0.25, 10).detail
    assert fmt_p(0.0004) == "<0.001"


def test_grade_certainty() -> None:
    ok = grade.DomainSuggestion("x", "no downgrade", 0, "", "")
    down = grade.DomainSuggestion("x", "downgrade 1 level", 1, "", "")
    assert grade.certainty("high", [ok, down]) == "moderate"
    assert grade.certainty("low", [down, down, down]) == "very low"
    assert grade.starting_level([0.8, 0.2], ["parallel_rct", "single_arm_prepost"]) == "high"
    assert grade.starting_level([0.2, 0.8], ["parallel_rct", "single_arm_prepost"]) == "low"


def test_grade_in_fixture_summary(rendered: Path) -> None:
    results = json.loads((rendered / "results.json").read_text(encoding="utf-8"))
    sof = {s["outcome"]: s for s in results["derived"]["summary_of_findings"]}
    tt = {d["domain"]: d for d in sof["total_testosterone"]["domains"]}
    # high/unclear trials: alder, dogwood, elm, hazel = 46.7% of the weight -> no downgrade.
    assert tt["risk of bias"]["downgrade"] == 0
    # n = 398 < 400, but the fixture's trial rows carry no per-arm n (7 trials of unknown
    # n): the OIS cannot be assessed and the interval (excluding 0) decides -> no downgrade
    assert tt["imprecision"]["downgrade"] == 0
    assert "7 trials with unknown n; OIS not assessable" in tt["imprecision"]["detail"]
    assert tt["publication bias"]["suggestion"] == "not assessable (k<10)"
    ft = {d["domain"]: d for d in sof["free_testosterone"]["domains"]}
    assert ft["imprecision"]["downgrade"] == 1  # interval includes 0 and the MID


# --------------------------------------------------------------------------- browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


HOOK = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || e));
}, true);
window.addEventListener('load', function () {
  var broken = Array.prototype.filter.call(document.images, function (i) {
    return !(i.complete && i.naturalWidth > 0); }).length;
  document.body.setAttribute('data-errors', JSON.stringify(window.__errors));
  document.body.setAttribute('data-broken-images', String(broken));
  document.body.setAttribute('data-images', String(document.images.length));
});
</script>"""


def _chromium_flags(tmp_path: Path) -> list[str]:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("headless Chromium not found (install Debian's 'chromium' package)")
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr", "--v=0"]


def _browser_problems(page: Path, tmp_path: Path, shot: Path) -> list[str]:
    """Open ``page`` in headless Chromium; return console messages, script errors and broken
    images (the report pages have no scripts, so any console message is a problem)."""
    flags = _chromium_flags(tmp_path)
    run = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000",
                          page.as_uri()], capture_output=True, text=True, timeout=60,
                         check=False)
    problems = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    if not shot.is_file():
        problems.append(f"no screenshot: {run.stderr[-500:]}")
    # Same page with an error hook: script/resource errors and images that do not decode.
    probe = tmp_path / f"probe_{page.name}"
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + HOOK, 1),
                     encoding="utf-8")
    dom = subprocess.run([*flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=60, check=False).stdout
    errors = re.search(r'data-errors="([^"]*)"', dom)
    if errors is None:
        return [*problems, "the error hook did not run"]
    problems += [f"error: {e}" for e in json.loads(html.unescape(errors.group(1)))]
    broken = re.search(r'data-broken-images="(\d+)"', dom)
    if broken is None or broken.group(1) != "0":
        problems.append(f"broken images: {broken.group(1) if broken else '?'}")
    return problems


@pytest.mark.browser
def test_report_renders_in_headless_chromium(rendered: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    assert _browser_problems(rendered / "report.html", tmp_path, shot) == []
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report_zinc_testosterone.png")


@pytest.mark.browser
def test_browser_check_detects_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><title>x</title></head><body>'
                   '<img src="missing.png"><script>console.error("boom"); nope();</script>'
                   "</body></html>", encoding="utf-8")
    problems = _browser_problems(bad, tmp_path, tmp_path / "bad.png")
    assert any("boom" in p for p in problems)
    assert any("nope" in p for p in problems)
    assert any("broken images: 1" in p for p in problems)
