"""End-to-end pipeline on a small synthetic evidence base: fits, cache, determinism, reports.

The fixture (tests/fixtures/pipeline) holds five synthetic two-arm trials whose effect shrinks
as baseline zinc rises, one single-arm study and one p-value-only study.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nutrimeta.pipeline import cache_key, run_fits, run_reports
from nutrimeta.spec import load_spec

FIXTURE = Path(__file__).parent / "fixtures" / "pipeline"
OUTCOME = "total_testosterone"


def _strip_volatile(obj: object) -> object:
    """Drop what legitimately differs between runs (timings, dates)."""
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items()
                if k not in ("fit_seconds", "created", "posterior_file")}
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("build")
    lines = list(run_fits(FIXTURE / "data", FIXTURE / "analyses", build, echo=lambda _: None))
    assert any("fitted" in line for line in lines), lines
    return build


def _bundle(build: Path) -> dict:
    return json.loads((build / "results" / "zinc_testosterone.json").read_text())


def test_every_shipped_model_passes_its_diagnostics_gate(built: Path) -> None:
    models = _bundle(built)["outcomes"][OUTCOME]["models"]
    for name in ("exact", "random_effects", "meta_regression_continuous"):
        assert models[name]["status"] == "ok", (name, models[name].get("reason"))
        assert models[name]["diagnostics"]["passed"]


def test_sampler_agrees_with_exact_posterior(built: Path) -> None:
    """Same model, two independent computations: NUTS draws vs quadrature."""
    models = _bundle(built)["outcomes"][OUTCOME]["models"]
    nuts, exact = models["random_effects"]["parameters"], models["exact"]["parameters"]
    for par in ("mu", "tau"):
        mcse = nuts[par]["mcse_mean"]
        assert abs(nuts[par]["mean"] - exact[par]["mean"]) < 4 * mcse + 0.02, par
        assert nuts[par]["sd"] == pytest.approx(exact[par]["sd"], rel=0.1), par


def test_meta_regression_recovers_the_fixture_gradient(built: Path) -> None:
    """The fixture's effect falls with baseline zinc: slope < 0 with high probability."""
    mr = _bundle(built)["outcomes"][OUTCOME]["models"]["meta_regression_continuous"]
    assert mr["parameters"]["slope"]["mean"] < 0
    better = [p["value"] for p in mr["probabilities"]
              if (p["quantity"], p["relation"], p["threshold"])
              == ("deficient_minus_replete", ">", 0.0)]
    assert better and better[0] > 0.9
    line = mr["regression_line"]
    assert line[0]["mean"] > line[-1]["mean"]


def test_bundle_lists_not_poolable_studies_and_claims(built: Path) -> None:
    b = _bundle(built)
    assert {r["study_id"] for r in b["not_poolable"]} >= {"fixg2020"}
    spec = load_spec(FIXTURE / "analyses" / "zinc_testosterone.toml")
    assert [c["claim"] for c in b["claims"]] == [c.text for c in spec.claims]
    assert all(c["verdict"] in ("supported", "uncertain", "not supported") for c in b["claims"])
    assert b["provenance"]["data_hash"] and b["provenance"]["versions"]["pymc"]
    assert b["flow"]["by_inclusion_status"] == {"included": 6, "not_poolable": 1}


def test_unchanged_inputs_are_not_refitted(built: Path) -> None:
    lines = list(run_fits(FIXTURE / "data", FIXTURE / "analyses", built, echo=lambda _: None))
    assert any("unchanged" in line for line in lines), lines


def test_changed_data_change_the_cache_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", data)
    spec = load_spec(FIXTURE / "analyses" / "zinc_testosterone.toml")
    before = cache_key(data, spec)
    results = data / "zinc_testosterone" / "results.csv"
    results.write_text(results.read_text().replace(",3.0,", ",3.1,", 1))
    assert cache_key(data, spec) != before


def test_refit_from_scratch_gives_identical_numbers(built: Path, tmp_path: Path) -> None:
    list(run_fits(FIXTURE / "data", FIXTURE / "analyses", tmp_path, force=True,
                  echo=lambda _: None))
    assert _strip_volatile(_bundle(tmp_path)) == _strip_volatile(_bundle(built))


def test_reports_render_from_saved_results(built: Path, tmp_path: Path) -> None:
    written = run_reports(FIXTURE / "data", built, tmp_path)
    assert (tmp_path / "index.html").exists()
    md = (tmp_path / "zinc_testosterone" / "report.md").read_text()
    b = _bundle(built)
    for claim in b["claims"]:
        assert claim["claim"] in md
    assert len(written) == 2


def test_outcome_fit_merges_into_the_saved_results(built: Path, tmp_path: Path) -> None:
    """`fit --outcome`: the named outcome is refitted and merged; the other outcomes' results,
    the claims and the provenance stay as they were; unknown keys and a missing bundle are
    one-line refusals before anything is fitted."""
    build = tmp_path / "build"
    shutil.copytree(built, build)
    before = _bundle(build)
    fit = list(run_fits(FIXTURE / "data", FIXTURE / "analyses", build, echo=lambda _: None,
                        outcomes=["free_testosterone"]))
    assert "free_testosterone unchanged" in fit[0]
    fit = list(run_fits(FIXTURE / "data", FIXTURE / "analyses", build, echo=lambda _: None,
                        outcomes=["free_testosterone"], force=True))
    assert fit[0].startswith("zinc_testosterone: refitted free_testosterone, merged")
    after = _bundle(build)
    assert _strip_volatile(after) == _strip_volatile(before)  # same inputs, same numbers
    assert after["provenance"].get("outcome_cache_keys") is None
    assert (build / "results" / "zinc_testosterone.previous.json").is_file()
    with pytest.raises(ValueError, match=r"^unknown outcome\(s\) nonsense; valid: "
                                         r"free_testosterone, total_testosterone$"):
        list(run_fits(FIXTURE / "data", FIXTURE / "analyses", build, outcomes=["nonsense"]))
    with pytest.raises(ValueError, match="no saved results to merge into"):
        list(run_fits(FIXTURE / "data", FIXTURE / "analyses", tmp_path / "empty",
                      outcomes=["free_testosterone"]))


def test_outcome_fit_after_a_data_change_records_its_inputs(built: Path,
                                                           tmp_path: Path) -> None:
    data, build = tmp_path / "data", tmp_path / "build"
    shutil.copytree(FIXTURE / "data", data)
    shutil.copytree(built, build)
    results = data / "zinc_testosterone" / "results.csv"
    results.write_text(results.read_text().replace(",3.0,", ",3.1,", 1))
    before = _bundle(build)
    list(run_fits(data, FIXTURE / "analyses", build, echo=lambda _: None,
                  outcomes=["free_testosterone"]))
    after = _bundle(build)
    keys = after["provenance"]["outcome_cache_keys"]
    new_key = cache_key(data, load_spec(FIXTURE / "analyses" / "zinc_testosterone.toml"))
    assert keys == {"total_testosterone": before["provenance"]["cache_key"],
                    "free_testosterone": new_key}
    assert after["outcomes"][OUTCOME] == before["outcomes"][OUTCOME]
    # the bundle no longer matches its inputs as a whole: a plain fit would refit it
    assert after["provenance"]["cache_key"] != new_key
    from nutrimeta.outcome_refit import scope_note
    from nutrimeta.results import load_bundle

    note = scope_note(load_bundle(build / "results" / "zinc_testosterone.json"), None)
    assert f"free_testosterone from inputs {new_key[:12]}" in note
