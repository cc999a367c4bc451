"""Living evidence: adding a trial by appending, the "what changed" comparison, and the value
of one more trial (``nutrimeta.living``)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
import yaml

from nutrimeta.living import (
    NewRecord,
    _with_trial,
    add_record,
    changes_markdown,
    changes_since_release,
    compare_bundles,
    latest_release,
    load_record,
    next_trial_value,
    posterior_from_bundle,
    prompt_record,
)
from nutrimeta.models.exact import exact_posterior
from nutrimeta.schema import DESIGNS, STUDIES
from nutrimeta.validate import load_evidence

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
LIVING = FIXTURES / "living"
SPEC = TESTS.parent / "analyses" / "zinc_testosterone.toml"
BASE = "zinc_testosterone"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the small valid data folder with the zinc analysis spec beside it."""
    shutil.copytree(FIXTURES / "valid_data", tmp_path / "data")
    (tmp_path / "analyses").mkdir()
    shutil.copy(SPEC, tmp_path / "analyses" / SPEC.name)
    return tmp_path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _record_dict() -> dict[str, Any]:
    return yaml.safe_load((LIVING / "new_trial.yaml").read_text(encoding="utf-8"))


def _write_record(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "record.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- adding

def test_valid_trial_is_only_appended(project: Path) -> None:
    data = project / "data"
    before = _snapshot(data)
    out = add_record(load_record(LIVING / "new_trial.yaml"), data)
    assert out.ok, out.describe()
    after = _snapshot(data)
    assert set(after) == set(before)  # no new (temporary) files, none removed
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {f"{BASE}/studies.csv", f"{BASE}/results.csv", f"{BASE}/references.bib"}
    for name in changed:
        old, new = before[name], after[name]
        assert new.startswith(old), name  # every existing byte unchanged
        tail = new[len(old):].decode("utf-8")
        assert tail.strip() == out.appended[f"data/{name}"].strip()
    assert after[f"{BASE}/studies.csv"][len(before[f"{BASE}/studies.csv"]):].count(b"\n") == 1
    assert after[f"{BASE}/results.csv"][len(before[f"{BASE}/results.csv"]):].count(b"\n") == 2
    ev = load_evidence(data)
    assert not ev.errors
    assert list(ev.studies["study_id"])[-1] == "zeta2015"
    assert (ev.results["study_id"] == "zeta2015").sum() == 2
    assert "zeta2015" in ev.references
    assert sorted(out.written) == sorted(data / n for n in changed)


def test_csv_pair_record_is_appended(project: Path) -> None:
    data = project / "data"
    record = load_record(LIVING / "new_trial_csv")
    assert record.study_id == "eta2016" and len(record.results) == 2
    assert record.result_lines == [2, 3]
    old = (data / BASE / "results.csv").read_bytes()
    out = add_record(record, data)
    assert out.ok, out.describe()
    new = (data / BASE / "results.csv").read_bytes()
    assert new.startswith(old) and new[len(old):].count(b"\n") == 2
    assert not load_evidence(data).errors


def _mutate_enum(d: dict) -> None:
    d["study"]["design"] = "randomised"


def _mutate_negative_sd(d: dict) -> None:
    d["results"][0]["sd"] = "-4.0"


def _mutate_duplicate_id(d: dict) -> None:
    d["study"]["study_id"] = "alpha2001"
    for r in d["results"]:
        r["study_id"] = "alpha2001"


def _mutate_duplicate_pmid(d: dict) -> None:
    d["study"]["pmid"] = "1000001"


def _mutate_missing_provenance(d: dict) -> None:
    del d["results"][1]["source_url"]


def _mutate_ci(d: dict) -> None:
    d["results"][0].update(ci_lower="17.0", ci_upper="19.0", ci_level="0.95")


BAD = {
    "unknown enum": (_mutate_enum, "design", "not allowed", "study"),
    "negative SD": (_mutate_negative_sd, "sd", "negative", 0),
    "duplicate study_id": (_mutate_duplicate_id, "study_id", "already recorded", "study"),
    "duplicate PMID": (_mutate_duplicate_pmid, "pmid", "already recorded", "study"),
    "missing provenance": (_mutate_missing_provenance, "source_url", "required value is missing",
                           1),
    "CI excluding its mean": (_mutate_ci, "ci_lower", "does not contain", 0),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_record_is_refused_and_nothing_written(project: Path, case: str) -> None:
    mutate, column, words, where = BAD[case]
    data = project / "data"
    d = _record_dict()
    mutate(d)
    path = _write_record(project, d)
    record = load_record(path)
    before = _snapshot(data)
    out = add_record(record, data)
    assert not out.ok
    assert out.written == []
    assert _snapshot(data) == before  # byte-identical, no temporary files left
    hits = [p for p in out.errors if p.column == column and words in p.message]
    assert hits, out.describe()
    p = hits[0]
    assert p.file == "record.yaml"  # located in the record, not in the data files
    expected_line = record.study_line if where == "study" else record.result_lines[where]
    assert p.row == expected_line is not None
    assert f"column {column}" in str(p)
    assert "nothing was written" in out.describe()


def test_record_for_unknown_base_is_refused(project: Path) -> None:
    d = _record_dict()
    d["study"]["evidence_base"] = "iron_thyroid"
    out = add_record(load_record(_write_record(project, d)), project / "data")
    assert not out.ok and [p.column for p in out.errors] == ["evidence_base"]


def test_shared_pmid_linked_by_overlap_with_is_accepted(project: Path) -> None:
    d = _record_dict()
    d["study"].update(pmid="1000001", overlap_with="alpha2001", inclusion_status="excluded",
                      inclusion_reason="second report of the alpha2001 cohort")
    out = add_record(load_record(_write_record(project, d)), project / "data")
    assert out.ok, out.describe()
    assert not [p for p in out.problems if p.column == "pmid"]


def test_overlapping_cohort_is_a_warning(project: Path) -> None:
    d = _record_dict()
    d["study"].update(first_author="Alpha", year=2002)
    out = add_record(load_record(_write_record(project, d)), project / "data", dry_run=True)
    assert out.ok
    warned = [p for p in out.warnings if p.column == "overlap_with"]
    assert warned and "alpha2001" in warned[0].message
    d["study"]["year"] = 2004  # three years apart: no longer flagged
    out = add_record(load_record(_write_record(project, d)), project / "data", dry_run=True)
    assert not [p for p in out.warnings if p.column == "overlap_with"]


def test_dry_run_writes_nothing_and_gives_effect_sizes(project: Path) -> None:
    data = project / "data"
    before = _snapshot(data)
    out = add_record(load_record(LIVING / "new_trial.yaml"), data, dry_run=True)
    assert out.ok and out.dry_run and out.written == []
    assert _snapshot(data) == before
    assert out.appended[f"data/{BASE}/results.csv"].count("\n") == 2
    assert out.effects is not None and len(out.effects) == 1
    row = out.effects.iloc[0]
    # independent computation: MD of final values, intervention minus control
    assert row["measure"] == "MD" and row["effect_unit"] == "nmol/L" and bool(row["poolable"])
    assert row["yi"] == pytest.approx(16.0 - 14.5, abs=1e-12)
    assert row["sei"] == pytest.approx(math.sqrt(4.0**2 / 25 + 3.8**2 / 24), rel=1e-12)
    assert "1.5" in out.describe() and "dry run" in out.describe()


def test_prompt_record_asks_required_first_with_choices(project: Path) -> None:
    answers = load_record(LIVING / "new_trial.yaml")
    asked: list[str] = []
    state = {"source": answers.study, "row": -1}

    def ask(text: str, **kw: Any) -> Any:
        if text.startswith("Add another"):
            return state["row"] < len(answers.results) - 1
        if text.startswith("BibTeX"):
            return answers.references
        name = text.split()[0]
        if name == "outcome":  # the first column asked of each results row
            state["row"] += 1
            state["source"] = answers.results[state["row"]]
            assert isinstance(kw.get("type"), click.Choice)
            assert "tpo_ab" not in kw["type"].choices  # only this base's outcomes
        if name == "design":
            assert isinstance(kw.get("type"), click.Choice)
            assert tuple(kw["type"].choices) == DESIGNS
        asked.append(name)
        return state["source"].get(name, "")

    record = prompt_record(BASE, ask=ask)
    required = [c.name for c in STUDIES.columns if c.required
                and c.name not in ("evidence_base", "nutrient")]
    assert asked[:len(required)] == required
    assert "blinding" in asked[len(required):asked.index("outcome")]
    assert record.study["evidence_base"] == BASE and record.study["nutrient"] == "zinc"
    assert len(record.results) == 2
    assert all(r["study_id"] == "zeta2015" for r in record.results)
    out = add_record(record, project / "data", dry_run=True)
    assert out.ok, out.describe()
    assert out.effects is not None and out.effects.iloc[0]["yi"] == pytest.approx(1.5)


def test_load_record_rejects_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("results: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="study"):
        load_record(path)


# ---------------------------------------------------------------------------- what changed

def _bundles() -> tuple[dict, dict]:
    old = json.loads((LIVING / "bundle_old.json").read_text(encoding="utf-8"))
    new = json.loads((LIVING / "bundle_new.json").read_text(encoding="utf-8"))
    return old, new


def test_compare_bundles_reports_shift_k_and_flipped_verdict() -> None:
    old, new = _bundles()
    changes = compare_bundles(old, new)
    by = {(c.kind, c.model, c.quantity): c for c in changes}
    mu = by[("parameter", "random_effects", "mu")]
    assert mu.delta == pytest.approx(0.3)
    assert mu.old["q025"] == pytest.approx(-0.178) and mu.new["q975"] == pytest.approx(2.18)
    k = by[("k", None, "k")]
    assert (k.old, k.new) == (3, 4)
    assert by[("studies_added", None, "studies")].new == ["zeta2015"]
    flagged = [c for c in changes if c.flag]
    assert len(flagged) == 1 and changes[0] is flagged[0]
    assert flagged[0].kind == "verdict" and (flagged[0].old, flagged[0].new) == (
        "uncertain", "supported")
    assert "raises total testosterone" in flagged[0].quantity
    # Monte Carlo noise is not reported: tau moved 0.01, the interaction 0.02, and a claim
    # crossed 0.95 by 0.002
    assert ("parameter", "random_effects", "tau") not in by
    assert ("parameter", "meta_regression_continuous", "deficient_minus_replete") not in by
    noise = [c for c in changes if c.kind == "verdict_at_threshold"]
    assert len(noise) == 1 and not noise[0].flag
    md = changes_markdown(changes, since="2026.11.0")
    assert "since data version 2026.11.0" in md
    assert "**uncertain → supported**" in md
    assert "zeta2015" in md and "3 → 4" in md
    assert md.index("verdict changed") < md.index("### total_testosterone")


def test_compare_identical_bundles_reports_nothing() -> None:
    old, _ = _bundles()
    assert compare_bundles(old, json.loads(json.dumps(old))) == []
    assert "No change beyond Monte Carlo noise" in changes_markdown([])


def test_interaction_change_beyond_tolerance_is_reported() -> None:
    old, new = _bundles()
    p = new["outcomes"]["total_testosterone"]["models"]["meta_regression_continuous"]
    p["parameters"]["deficient_minus_replete"]["mean"] = 2.1  # +0.5 SD
    by = {(c.kind, c.quantity) for c in compare_bundles(old, new)}
    assert ("parameter", "deficient_minus_replete") in by


def _not_estimable(quantity: str) -> dict[str, Any]:
    return {"estimable": False, "reason": "no trial above the cut-off", "prior_sd": 2.0,
            "posterior_sd": 1.9, "contraction": 0.95, "n_measured": 0, "n_category_only": 3,
            "n_below": 3, "n_above": 0}


def test_non_estimable_moderator_numbers_are_not_compared() -> None:
    old, new = _bundles()
    models = [b["outcomes"]["total_testosterone"]["models"]["meta_regression_continuous"]
              for b in (old, new)]
    models[1]["parameters"]["deficient_minus_replete"]["mean"] = 9.0  # far beyond noise
    base = {(c.kind, c.quantity) for c in compare_bundles(old, new)}
    assert ("parameter", "deficient_minus_replete") in base  # compared while estimable
    # not estimable now, not assessed before: no numeric comparison, "not estimable" instead
    models[1]["moderator"] = {"deficient_minus_replete": _not_estimable("d")}
    changes = [c for c in compare_bundles(old, new) if c.quantity == "deficient_minus_replete"]
    assert [c.kind for c in changes] == ["estimability"]
    assert (changes[0].old, changes[0].new) == ("not assessed", "not estimable")
    md = changes_markdown(changes)
    assert "not estimable" in md and "9" not in md.split("| change |")[1].split("_")[0]
    # not estimable in both releases: nothing to compare, nothing listed
    models[0]["moderator"] = {"deficient_minus_replete": _not_estimable("d")}
    assert not [c for c in compare_bundles(old, new) if c.quantity == "deficient_minus_replete"]


def test_changes_since_latest_release(tmp_path: Path) -> None:
    old, new = _bundles()
    for version, bundle in (("2026.9.0", new), ("2026.11.0", old)):
        (tmp_path / version / BASE).mkdir(parents=True)
        (tmp_path / version / BASE / "results.json").write_text(json.dumps(bundle))
    assert latest_release(tmp_path, BASE)[0] == "2026.11.0"  # numeric, not string, order
    assert "uncertain → supported" in changes_since_release(new, tmp_path)
    assert "No previous release" in changes_since_release(new, tmp_path / "none")


# ------------------------------------------------------------------------ next trial value

def test_one_more_trial_update_matches_exact_posterior() -> None:
    old, _ = _bundles()
    post = posterior_from_bundle(old, "total_testosterone")
    assert post is not None and post.k == 3
    y_new = np.array([-1.0, 1.3, 4.0])
    p_ben, p_mid = _with_trial(post, y_new, 0.8, 1.0, 1.0)
    for y, a, b in zip(y_new, p_ben, p_mid, strict=True):
        ref = exact_posterior([*post.y, y], [*post.se, 0.8], post.tau_prior,
                              mu_prior=(0.0, 10.0))
        assert a == pytest.approx(ref.mu.prob_gt(0.0), abs=2e-4)
        assert b == pytest.approx(ref.mu.prob_gt(1.0), abs=2e-4)


def test_next_trial_value_grows_with_trial_size() -> None:
    old, _ = _bundles()
    post = posterior_from_bundle(old, "total_testosterone")
    res = [next_trial_value(post, n, 4.0, 1.0, "increase", n_sims=400,
                            rng=np.random.default_rng(7)) for n in (10, 50, 200, 1000)]
    p = [r["p_supported"] for r in res]
    assert p == sorted(p) and p[-1] > p[0] + 0.2, p
    assert 0.5 < res[0]["p_benefit_now"] < 0.95  # the claim is uncertain now
    for r in res:  # the expected posterior probability equals the current one (martingale)
        assert r["expected_p_benefit"] == pytest.approx(r["p_benefit_now"], abs=0.03)
    down = next_trial_value(post, 200, 4.0, 1.0, "decrease", n_sims=400,
                            rng=np.random.default_rng(7))
    assert down["p_benefit_now"] == pytest.approx(1 - res[0]["p_benefit_now"])
    assert down["p_supported"] < res[2]["p_supported"]


def test_next_trial_value_needs_plain_model() -> None:
    post = exact_posterior([1.0, 2.0, 0.5], [1.0, 1.0, 1.0], posterior_from_bundle(
        _bundles()[0], "total_testosterone").tau_prior, X=np.c_[np.ones(3), [0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="plain"):
        next_trial_value(post, 50, 4.0, 1.0, "increase", rng=np.random.default_rng(0))


def test_new_record_defaults() -> None:
    r = NewRecord(study={"study_id": "x2020", "evidence_base": BASE}, results=[{}])
    assert r.study_id == "x2020" and r.evidence_base == BASE


def test_file_without_final_newline_keeps_its_bytes(project: Path) -> None:
    path = project / "data" / BASE / "results.csv"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    old = path.read_bytes()
    out = add_record(load_record(LIVING / "new_trial.yaml"), project / "data")
    assert out.ok, out.describe()
    new = path.read_bytes()
    assert new.startswith(old) and new[len(old):len(old) + 1] == b"\n"
    assert (load_evidence(project / "data").results["study_id"] == "zeta2015").sum() == 2


def test_unknown_column_in_record_is_refused(project: Path) -> None:
    d = _record_dict()
    d["results"][0]["standard_deviation"] = "4.0"
    before = _snapshot(project / "data")
    out = add_record(load_record(_write_record(project, d)), project / "data")
    assert not out.ok and _snapshot(project / "data") == before
    assert [p.column for p in out.errors] == ["standard_deviation"]
