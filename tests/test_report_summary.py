"""Tests of the reader-facing summary: bottom line, summary-of-findings table, PRISMA 2020
flow (its arithmetic checked against the curated data), failed-fit banner and the browser
layout of each report."""

from __future__ import annotations

import csv
import html
import json
import math
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nutrimeta.report import render_evidence_base, render_index
from nutrimeta.report import summary as summ
from nutrimeta.results import Bundle, load_bundle

FIXTURES = Path(__file__).parent / "fixtures" / "report"
BUNDLE = FIXTURES / "zinc_testosterone.json"
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
BASES = sorted(p.parent.name for p in DATA.glob("*/studies.csv"))


def _tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (pd.read_csv(FIXTURES / "effects.csv"), pd.read_csv(FIXTURES / "studies.csv"),
            pd.read_csv(FIXTURES / "syntheses.csv"))


def _render(bundle_path: Path, out: Path) -> Path:
    effects, studies, syntheses = _tables()
    return render_evidence_base(bundle_path, effects, studies, syntheses, out)


def _write(bundle: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "zinc_testosterone.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("reports") / "zinc_testosterone"
    return _render(BUNDLE, out).read_text(encoding="utf-8")


@pytest.fixture()
def bundle() -> dict[str, Any]:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- first screen


def test_bottom_line_is_the_first_screen(page: str) -> None:
    first = page.find("<section")
    assert first == page.find('<section id="bottom-line"')
    assert page.find('id="bottom-line"') < page.find('id="summary-of-findings"') \
        < page.find('id="glance"') < page.find('id="outcome-total_testosterone"')
    # The first forest plot comes before the study-characteristics appendix.
    assert page.find("forest_total_testosterone") < page.find('id="appendix-characteristics"')
    bottom = page[page.find('id="bottom-line"'):page.find('id="summary-of-findings"')]
    assert "Does zinc supplementation raise testosterone" in bottom
    # Free testosterone: 3 trials in the fixture; total testosterone: 7 trials.
    assert "3 randomised trials" in bottom and "7 randomised trials" in bottom
    assert "certainty" in bottom
    assert "Baseline deficiency." in bottom
    assert "slope" not in bottom.lower()  # no moderator number as a finding


def test_outcome_sentences_follow_the_verdict_rule(bundle: dict[str, Any]) -> None:
    b = Bundle.model_validate(bundle)
    ft = b.outcomes["free_testosterone"]
    assert ft.k >= b.verdict_rule.min_trials
    b.verdict_rule.min_trials = ft.k + 1
    text = summ.outcome_sentence(b, "free_testosterone", "low")
    assert text.startswith(f"{ft.k} randomised trials, ")
    assert "too few to say whether zinc raises free testosterone; low certainty." in text


def test_zero_trials_are_said_plainly(bundle: dict[str, Any], tmp_path: Path) -> None:
    o = bundle["outcomes"]["free_testosterone"]
    o.update(k=0, n_participants=0, studies=[])
    for m in o["models"].values():
        m.update(status="skipped", reason="0 poolable trials", parameters={}, k=0,
                 prediction=None, diagnostics=None, probabilities=[])
    page = _render(_write(bundle, tmp_path / "results"), tmp_path / "r" / "z") \
        .read_text(encoding="utf-8")
    bottom = page[page.find('id="bottom-line"'):page.find('id="glance"')]
    assert "0 poolable trials" in bottom
    assert "No model could be summarised" not in bottom
    assert "no poolable trial" in bottom  # summary-of-findings effect cell


def test_ratio_of_means_back_transformed() -> None:
    assert summ.natural(math.log(1.2), "ROM") == pytest.approx(20.0, abs=1e-12)
    assert summ.natural(math.log(0.75), "ROM") == pytest.approx(-25.0, abs=1e-12)
    assert summ.natural(-0.7, "MD") == -0.7


def test_summary_of_findings_counts_unknown_n(bundle: dict[str, Any]) -> None:
    b = Bundle.model_validate(bundle)
    o = b.outcomes["total_testosterone"]
    first = o.studies[0]
    first.n_intervention = first.n_control = None
    rows = summ.summary_rows(b, [])
    tt = next(r for r in rows if r["outcome"] == "total_testosterone")
    n_unknown = sum(1 for sid in {s.study_id for s in o.studies}
                    if all(s.n_intervention is None and s.n_control is None
                           for s in o.studies if s.study_id == sid))
    assert n_unknown >= 1
    assert f"({n_unknown} trial" in tt["trials_participants"]
    assert "unknown n" in tt["comments"]


# --------------------------------------------------------------------------- banner


def test_secondary_failure_is_listed_not_bannered(bundle: dict[str, Any],
                                                  tmp_path: Path) -> None:
    bundle["claims"] = []
    models = bundle["outcomes"]["total_testosterone"]["models"]
    models["meta_regression_continuous"]["diagnostics"].update(
        passed=False, problems=["1 divergent transition"])
    path = _write(bundle, tmp_path / "results")
    page = _render(path, tmp_path / "r" / "z").read_text(encoding="utf-8")
    assert 'id="diagnostics-banner"' not in page
    listed = page[page.find('id="failed-secondary"'):]
    assert "meta_regression_continuous: 1 divergent transition" in listed
    assert "not used for any headline result or claim" in listed
    index = render_index([path], tmp_path / "r").read_text(encoding="utf-8")
    assert 'id="diagnostics-banner"' not in index
    # The same failure in the primary model is bannered.
    models["random_effects"]["diagnostics"].update(passed=False, problems=["R-hat 1.2"])
    page = _render(_write(bundle, tmp_path / "r2"), tmp_path / "r2" / "z") \
        .read_text(encoding="utf-8")
    assert 0 < page.find('id="diagnostics-banner"') < page.find('id="bottom-line"')


# --------------------------------------------------------------------------- PRISMA


def _independent_counts(base: str) -> Counter[tuple[str, str]]:
    with (DATA / base / "studies.csv").open(encoding="utf-8", newline="") as fh:
        return Counter((r["inclusion_status"], r["reason_code"]) for r in csv.DictReader(fh))


@pytest.mark.parametrize("base", BASES)
def test_prisma_counts_add_up(base: str) -> None:
    studies = pd.read_csv(DATA / base / "studies.csv")
    bundle = load_bundle(BUNDLE)
    bundle = bundle.model_copy(update={"evidence_base": base})
    flow = summ.prisma_flow(bundle, studies)
    counts = _independent_counts(base)
    total = sum(counts.values())
    by_status = Counter()
    for (status, _), n in counts.items():
        by_status[status] += n
    assert flow["identified"] == total == len(studies)
    assert flow["duplicates"] == counts[("excluded", "duplicate_report")]
    assert flow["excluded"] == by_status["excluded"] - flow["duplicates"]
    assert flow["separate"] == by_status["separate"]
    assert flow["not_used"] == by_status["not_poolable"]
    assert flow["included"] == by_status["included"]
    assert flow["other_status"] == 0
    assert flow["screened"] == total - flow["duplicates"]
    assert flow["eligible"] == flow["screened"] - flow["excluded"]
    assert flow["eligible"] == flow["separate"] + flow["not_used"] + flow["included"]
    for key in ("excluded", "separate", "not_used"):
        assert sum(r["n"] for r in flow[f"{key}_reasons"]) == flow[key]
    # Every reason is from the controlled vocabulary.
    codes = {r["code"] for k in ("excluded", "separate", "not_used")
             for r in flow[f"{k}_reasons"]}
    assert codes <= set(summ.REASON_CODES)
    svg = summ.prisma_svg(flow, {"lookups": 12})
    for n in (flow["identified"], flow["screened"], flow["eligible"], flow["included"]):
        assert f": {n}<" in svg


@pytest.mark.parametrize("base", BASES)
def test_studies_tables_one_row_per_study(base: str) -> None:
    studies = pd.read_csv(DATA / base / "studies.csv")
    bundle = load_bundle(BUNDLE).model_copy(update={"evidence_base": base})
    not_used = summ.studies_table(bundle, studies, ("not_poolable", "separate"))
    counts = _independent_counts(base)
    assert len(not_used) == sum(n for (s, _), n in counts.items()
                                if s in ("not_poolable", "separate"))
    assert set(not_used["Reason"]) <= set(summ.REASON_CODES.values())


def test_prisma_per_outcome_matches_bundle_trials() -> None:
    """Per outcome, the diagram's k is the number of distinct trials pooled in the bundle, and
    each of them is counted among the included reports."""
    bundle = load_bundle(BUNDLE)
    studies = pd.read_csv(FIXTURES / "studies.csv")
    flow = summ.prisma_flow(bundle, studies)
    included = set(studies.loc[studies["inclusion_status"] == "included", "study_id"])
    for p in flow["per_outcome"]:
        ids = {s.study_id for s in bundle.outcomes[p["outcome"]].studies}
        assert p["k"] == len(ids)
        assert ids <= included
        assert p["k"] <= flow["included"]


def test_search_summary_counts_logged_lookups(tmp_path: Path) -> None:
    log = tmp_path / "SEARCH_LOG.md"
    log.write_text("| # | tool | query |\n|---|---|---|\n| 1 | search | a |\n| 2 | search | b |\n"
                   "| F3 | search | c |\nDone 2026-11-29.\n", encoding="utf-8")
    s = summ.search_summary(log)
    assert s == {"lookups": 3, "dates": ["2026-11-29"], "link": "SEARCH_LOG.md"}


# --------------------------------------------------------------------------- browser

PROBE = """<script>
window.addEventListener('load', function () {
  var W = window.innerWidth, out = [];
  function check(el, name) {
    var r = el.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) out.push(name + ' has zero size');
    if (r.right > W + 1 || r.left < -1) out.push(name + ' outside the viewport width');
  }
  ['bottom-line', 'summary-of-findings', 'prisma-flow', 'references',
   'synthesis-without-meta-analysis', 'risk-of-bias'].forEach(function (id) {
    var el = document.getElementById(id);
    if (!el) { out.push('#' + id + ' missing'); } else { check(el, '#' + id); }
  });
  var figs = document.querySelectorAll('[id^="fig-forest_"], [id^="fig-albatross_"]');
  Array.prototype.forEach.call(figs, function (el) { check(el, '#' + el.id); });
  document.body.setAttribute('data-n-new-figures', String(figs.length));
  Array.prototype.forEach.call(document.images, function (img, i) {
    if (!(img.complete && img.naturalWidth > 0)) out.push('image ' + i + ' broken');
    check(img, 'image ' + i);
  });
  if (document.documentElement.scrollWidth > W) {
    out.push('horizontal overflow: ' + document.documentElement.scrollWidth + ' > ' + W);
  }
  document.body.setAttribute('data-layout', JSON.stringify(out));
  document.body.setAttribute('data-n-images', String(document.images.length));
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium not found (install Debian's 'chromium' package)")


def _flags(tmp_path: Path, width: int = 1400) -> list[str]:
    return [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={width},1000"]


def layout_problems(report: Path, tmp_path: Path) -> tuple[list[str], int]:
    """Open ``report`` in headless Chromium at 1,400 px; return layout problems and the number
    of images."""
    probe = report.with_name(f"probe_{report.name}")
    probe.write_text(report.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                     encoding="utf-8")
    try:
        dom = subprocess.run([*_flags(tmp_path), "--virtual-time-budget=5000", "--dump-dom",
                              probe.as_uri()], capture_output=True, text=True, timeout=120,
                             check=False).stdout
    finally:
        probe.unlink()
    found = re.search(r'data-layout="([^"]*)"', dom)
    if found is None:
        return ["the layout probe did not run"], 0
    n_img = re.search(r'data-n-images="(\d+)"', dom)
    n_new = re.search(r'data-n-new-figures="(\d+)"', dom)
    problems = json.loads(html.unescape(found.group(1)))
    if n_new is None or int(n_new.group(1)) == 0:
        problems.append("no forest or albatross figure")
    return problems, int(n_img.group(1)) if n_img else 0


def _shipped_reports(tmp_path: Path) -> list[Path]:
    """Reports of the shipped evidence bases rendered from build/results (when fitted)."""
    from nutrimeta.pipeline import run_reports

    if not list((ROOT / "build" / "results").glob("*.json")):
        return []
    return [p for p in run_reports(DATA, ROOT / "build", tmp_path / "reports",
                                   ROOT / "releases") if p.name == "report.html"]


@pytest.mark.browser
def test_fixture_report_layout(tmp_path: Path) -> None:
    report = _render(BUNDLE, tmp_path / "reports" / "zinc_testosterone")
    problems, n_images = layout_problems(report, tmp_path)
    assert problems == []
    assert n_images >= 5


@pytest.mark.browser
@pytest.mark.slow
def test_shipped_report_layouts(tmp_path: Path) -> None:
    reports = _shipped_reports(tmp_path)
    if not reports:
        pytest.skip("no fitted results in build/results: run `nutrimeta fit` first")
    for report in reports:
        problems, _ = layout_problems(report, tmp_path)
        assert problems == [], (report.parent.name, problems)


@pytest.mark.browser
def test_layout_probe_detects_overflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><title>x</title></head><body>'
                   '<section id="bottom-line" style="width:3000px">x</section>'
                   '<img src="missing.png"></body></html>', encoding="utf-8")
    problems, _ = layout_problems(bad, tmp_path)
    assert any("horizontal overflow" in p for p in problems)
    assert "#summary-of-findings missing" in problems
    assert "#prisma-flow missing" in problems
    assert "#references missing" in problems
    assert "no forest or albatross figure" in problems
    assert any("image 0 broken" in p for p in problems)


def test_participant_count_never_reads_as_covering_every_trial() -> None:
    """Two trials, one without a reported n: the 63 participants belong to the other."""
    from types import SimpleNamespace

    from nutrimeta.report.summary import trials_text

    def outcome(ns: list[tuple[int | None, int | None]], n_total: float) -> SimpleNamespace:
        studies = [SimpleNamespace(study_id=f"t{i}", n_intervention=a, n_control=b)
                   for i, (a, b) in enumerate(ns)]
        return SimpleNamespace(k=len(ns), n_participants=n_total, studies=studies)

    assert trials_text(outcome([(30, 33), (None, None)], 63)) == (
        "2 randomised trials (1 with unknown n), 63 participants in the other")
    assert trials_text(outcome([(30, 33), (20, 20)], 103)) == (
        "2 randomised trials, 103 participants")
    assert trials_text(outcome([(None, None)], 0)) == (
        "1 randomised trial, number of participants not reported")
