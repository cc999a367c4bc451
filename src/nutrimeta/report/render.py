"""Render the per-evidence-base reports and the index page from saved results.

Nothing here fits a model: every number comes from the results bundle
(``build/results/<base>.json``, shape in ``docs/pipeline.md``), the effect-size table and the
curated tables.

The bundle is read as a typed :class:`~nutrimeta.results.Bundle`: a field the renderer needs
and the fit stage did not write fails when the bundle is read, with the field named.

I² values (``models.<m>.i2`` and ``frequentist.*.i2``) are read as percentages (0-100).
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import jinja2
import markdown
import pandas as pd
from markupsafe import Markup

import nutrimeta
from nutrimeta import outcome_refit
from nutrimeta.analysis_results import AnalysisMu
from nutrimeta.io_utils import atomic_write_text
from nutrimeta.report import figures as figs
from nutrimeta.report import forest
from nutrimeta.report import references as refs
from nutrimeta.report import risk_of_bias as rob
from nutrimeta.report import summary as summ
from nutrimeta.report import syntheses as published
from nutrimeta.report import synthesis_without_ma as swim
from nutrimeta.report import tables as tbl
from nutrimeta.report.calibration import find_calibration
from nutrimeta.report.citation import find_citation, read_citation
from nutrimeta.report.fmt import (
    describe,
    fmt,
    fmt_estimate,
    fmt_int,
    fmt_p,
    fmt_prob,
    fmt_prob_eq,
    html_table,
    md_table,
)
from nutrimeta.report.methods import methods_text
from nutrimeta.report.moderator import (
    legacy_moderator_parts,
    moderator_headline_parts,
    multivariate_sentences,
)
from nutrimeta.results import (
    Bundle,
    ReportResults,
    Summary,
    clean_json,
    load_bundle,
    load_cross,
    to_json,
)
from nutrimeta.schema import OUTCOMES

TEMPLATES = Path(__file__).parent / "templates"
CROSS_NUTRIENT_NAME = "cross_nutrient.json"

__all__ = ["render_evidence_base", "render_evidence_bases", "render_index"]


# --------------------------------------------------------------------------- file helpers


def _swap_dir(new: Path, target: Path) -> None:
    """Replace folder ``target`` by ``new`` (same parent), keeping ``target`` if that fails."""
    os.chmod(new, 0o755)
    old: Path | None = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def headline(bundle: Bundle, oid: str) -> dict[str, Any]:
    """The at-a-glance statement for one outcome: the primary model's pooled effect and its
    probability of benefit (P(mu > 0) or P(mu < 0) by the outcome's beneficial direction)."""
    o = bundle.outcomes[oid]
    unit = o.effect_unit
    out: dict[str, Any] = {"outcome": oid, "label": o.label, "k": o.k,
                           "n_participants": o.n_participants, "unit": unit}
    pm = o.primary_model()
    parts: list[str] = []
    if pm is None:
        out["text"] = ("0 poolable randomised trials: no pooled estimate." if o.k == 0 else
                       "No model could be summarised for this outcome (see diagnostics).")
        return out
    mid, m = pm
    mu: Summary | AnalysisMu = m.parameters["mu"]
    p_benefit = o.benefit_probability(m)
    if o.k == 1:  # one trial with its arms: its own estimate (GLS across arms), never pooled
        conv = (o.analyses or {}).get("conventional")
        if conv is not None and conv.mu is not None:
            mu, p_benefit = conv.mu, conv.mu.p_benefit.value
        arms = len(o.studies)
        trial = o.studies[0].study_id if o.studies else "one trial"
        with_arms = f", {arms} arms against its control" if arms > 1 else ""
        parts.append(f"one trial ({trial}{with_arms}): {o.measure} {fmt_estimate(mu)}"
                     f"{' ' + unit if unit else ''} (95% interval; "
                     f"n = {fmt_int(o.n_participants)}); not a pooled result")
    else:
        parts.append(f"pooled {o.measure} {fmt_estimate(mu)}{' ' + unit if unit else ''} "
                     f"(95% CrI; {mid}, k = {fmt_int(o.k)}, "
                     f"n = {fmt_int(o.n_participants)})")
    parts.append(f"P(mu {o.relation} 0) {fmt_prob_eq(p_benefit)}")
    if o.moderator is not None:
        parts += moderator_headline_parts(o)
    else:  # bundles from before the estimability rule
        parts += legacy_moderator_parts(o)
    out["text"] = "; ".join(parts) + "."
    out["mean"], out["q025"], out["q975"] = mu.mean, mu.q025, mu.q975
    return out


def provenance_rows(bundle: Bundle, bundle_name: str) -> list[tuple[str, str]]:
    """Key/value rows of the provenance block."""
    prov = bundle.provenance
    rows = [("results bundle", bundle_name),
            ("package version (fit)", prov.package_version),
            ("package version (report)", nutrimeta.__version__),
            ("data version", prov.data_version),
            ("data hash", prov.data_hash),
            ("spec hash", prov.spec_hash),
            ("seed", str(prov.seed)),
            ("sampler", describe(prov.sampler)),
            ("run date", prov.created)]
    if prov.lock_hash:
        rows.append(("install lock (requirements.lock)", prov.lock_hash))
    if prov.lock_mismatches:
        rows.append(("departures from the lock", describe(prov.lock_mismatches)))
    rows += [(f"version: {k}", str(v)) for k, v in sorted(prov.versions.items())]
    return rows


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """The templates' environment, made once per process so each template is compiled once."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False, default=False),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(fmt=fmt, fmt_prob=fmt_prob, fmt_prob_eq=fmt_prob_eq, fmt_p=fmt_p,
                       fmt_int=fmt_int, fmt_estimate=fmt_estimate, html_table=html_table,
                       md_table=md_table)
    return env


# --------------------------------------------------------------------------- per-base report


def _check_findings(path: Path | None, studies: pd.DataFrame) -> pd.DataFrame | None:
    """Consistency-check findings (``nutrimeta check``) for this base's studies, or None."""
    if path is None or not Path(path).is_file():
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = pd.DataFrame(data.get("findings") or [])
    if rows.empty:
        return rows
    if "study_id" in rows.columns:
        rows = rows[rows["study_id"].isin(set(studies["study_id"]))]
    cols = [c for c in ("severity", "study_id", "outcome", "rule", "message") if c in rows]
    return rows[cols].reset_index(drop=True)


def _with_labels(df: pd.DataFrame, bundle: Bundle) -> pd.DataFrame:
    """``df`` with its ``outcome`` ids replaced by the outcomes' labels (spec, then schema)."""
    labels = {**{oid: str(v.get("label", oid)) for oid, v in OUTCOMES.items()},
              **{oid: o.label for oid, o in bundle.outcomes.items()}}
    return df.assign(outcome=df["outcome"].map(lambda x: labels.get(x, x)))


def _curation_notes(studies: pd.DataFrame) -> pd.DataFrame:
    """Curation notes per study (the curators' own words, kept apart from the reasons)."""
    cols = [c for c in ("study_id", "inclusion_status", "inclusion_reason", "notes")
            if c in studies.columns]
    return studies[cols].fillna("").reset_index(drop=True)

POOLED_LABELS = {"q025": "2.5%", "q975": "97.5%"}


def _build(bundle: Bundle, bundle_name: str, effects: pd.DataFrame,
           studies: pd.DataFrame, syntheses: pd.DataFrame, citation: dict[str, Any],
           out: Path, search_log: Path | None = None,
           check_findings: Path | None = None,
           calibration: Mapping[str, Any] | None = None,
           references_bib: Path | None = None,
           risk_of_bias_csv: Path | None = None) -> dict[str, Any]:
    """Write figures and tables into ``out`` and return the template context."""
    base = bundle.evidence_base
    fig_dir = out / "figures"
    tab_dir = out / "tables"
    fig_dir.mkdir(parents=True)
    tab_dir.mkdir(parents=True)
    mod = bundle.spec.moderator

    frames: dict[str, pd.DataFrame] = {
        "study_characteristics": tbl.study_characteristics(studies, base),
        "pooled_results": tbl.pooled_results(bundle),
        "probabilities": tbl.probabilities(bundle),
        "frequentist": tbl.frequentist(bundle),
        "small_study": tbl.small_study(bundle),
        "not_poolable": tbl.not_poolable(bundle, effects),
        "sensitivity": tbl.sensitivity(bundle),
        "diagnostics": tbl.diagnostics(bundle),
        "published_syntheses": published.harmonise(tbl.published_syntheses(bundle,
                                                                            syntheses)),
    }
    rob_df = rob.load(risk_of_bias_csv) if risk_of_bias_csv is not None else None
    rob_lights = rob.traffic_lights(rob_df, rob.analysed_studies(bundle, studies),
                                    rob.study_labels(studies))
    frames["risk_of_bias"] = rob.frame(rob_lights)
    sof = tbl.summary_of_findings(bundle, studies, effects, risk=rob.overall(rob_df))
    frames["summary_of_findings"] = tbl.summary_of_findings_frame(sof)
    flow = tbl.prisma(studies, effects, base)
    frames["prisma_flow"] = tbl.prisma_frame(flow)
    sof_rows = summ.summary_rows(bundle, sof)
    frames["summary_of_findings_table"] = summ.summary_frame(sof_rows)
    bottom = summ.bottom_line(bundle, sof)
    prisma2020 = summ.prisma_flow(bundle, studies)
    search = summ.search_summary(search_log)
    if search_log is not None and search_log.is_file():
        shutil.copyfile(search_log, out / search_log.name)
    frames["studies_not_used"] = summ.studies_table(bundle, studies, ("not_poolable",
                                                                      "separate"))
    frames["studies_excluded"] = summ.studies_table(bundle, studies, ("excluded",))

    outcomes_ctx: list[dict[str, Any]] = []
    figure_index: list[dict[str, str]] = []
    for oid, outcome in bundle.outcomes.items():
        label = outcome.label
        pm = outcome.primary_model()
        pmodel = pm[1] if pm else None
        pooled_mu = pmodel.parameters["mu"] if pmodel is not None else None
        se = tbl.study_effects(outcome)
        o = outcome
        frames[f"study_effects_{oid}"] = se
        ofigs: list[dict[str, Any]] = []

        def add(fig: Any, name: str, caption: str, _ofigs: list[dict[str, Any]] = ofigs,
                _oid: str = oid) -> None:
            if fig is None:
                return
            saved = figs.save_figure(fig, fig_dir, f"{name}_{_oid}")
            saved["caption"] = caption
            _ofigs.append(saved)
            figure_index.append({"outcome": _oid, "name": saved["name"], "png": saved["png"],
                                 "svg": saved["svg"], "caption": caption})

        unit = o.effect_unit
        with figs.figure_style():
            add(forest.forest_plot(o, oid, effects, label), "forest",
                f"Forest plot, {label} ({o.measure}{', ' + unit if unit else ''}): one "
                "author-year label per trial with its arms (a shared control counted once), "
                "per-arm mean (SD), n; observed effects with 95% confidence intervals (square "
                "size = weight in the conventional analysis); reports that enter only the "
                "all-reports analysis show their route; trials grouped by baseline status; "
                "diamonds: pooled mean and 95% credible interval of the conventional and "
                "all-reports analyses; heterogeneity from the frequentist REML fit.")
            line_model = next((m for m in o.models.values() if m.ok and m.regression_line
                               and m.estimable("slope")), None)
            no_line = ("; no regression band: the slope is not estimable ("
                       + o.moderator.quantities["slope"].statement + ")"
                       if o.moderator is not None and "slope" in o.moderator.quantities
                       and not o.moderator.quantities["slope"].estimable
                       else "; no regression line in the results")
            latent_model = o.models.get("meta_regression_continuous")
            add(figs.effect_vs_baseline(o, line_model, label, mod,
                                        latent_model if latent_model is not None
                                        and latent_model.ok else None),
                "effect_vs_baseline",
                f"Effect versus baseline status, {label}. Filled bubbles: trials with a "
                "measured baseline level, at that level (area proportional to precision, "
                "1/SE²); hollow markers with a horizontal bar: trials placed by their status "
                "category only, at their latent level's posterior (or the declared prior when "
                "no continuous meta-regression was fitted) with its 95% interval; colour "
                "gives the baseline status category"
                + ("; line and band: posterior mean regression line and 95% credible band "
                   "over the measured baseline range" if line_model else no_line)
                + f"; dotted line: deficiency cut-off {fmt(mod.cutoff)} {mod.unit}.")
            dens_model = next((m for m in o.models.values()
                               if m.ok and {"effect_deficient", "effect_replete"}
                               <= set(m.parameters) and m.estimable("effect_deficient")
                               and m.estimable("effect_replete")), None)
            if dens_model is not None:
                res = figs.subgroup_densities(o, dens_model, label)
                if res is not None:
                    fig, approx = res
                    add(fig, "density_by_status",
                        f"Posterior density of the pooled effect on {label} in deficient and "
                        "replete populations"
                        + (" (normal approximation from posterior mean and SD)." if approx
                           else " (density grids from the posterior draws)."))
            centre = pooled_mu.mean if pooled_mu is not None else None
            ss = outcome.small_study
            add(figs.funnel(o, centre, label) if o.k >= summ.MIN_TRIALS_FUNNEL else None,
                "funnel",
                f"Contour-enhanced funnel plot, {label}: shading marks where a trial's own "
                "two-sided p-value against no effect falls (p < 0.01, 0.01-0.05, 0.05-0.10, "
                "> 0.10); dashed lines: 95% pseudo-confidence limits around the pooled mean. "
                + (f"Egger-type small-study test: intercept {fmt(ss.intercept)}, "
                   f"p = {fmt_p(ss.p_value)}, k = {fmt_int(ss.k)}. "
                   + str(ss.caveat or "The test has low power with fewer than 10 trials.")
                   if ss.intercept is not None else
                   f"Egger-type small-study test {ss.caveat or 'not run'} (k = {ss.k})."))
            add(figs.cumulative(o, label), "cumulative",
                f"Cumulative evidence, {label}: pooled mean and 95% CrI after adding each trial "
                "in order of publication.")
            add(figs.tau_prior_posterior(o, label), "tau_prior_posterior",
                f"Prior (dashed) and posterior (solid) density of tau, the between-trial "
                f"standard deviation, {label}.")
            add(figs.sensitivity(o, pooled_mu, label), "sensitivity",
                f"Sensitivity analyses, {label}: pooled mean and 95% CrI under alternative "
                "priors, leaving out one trial at a time and other pre/post correlations.")

        pr = frames["pooled_results"]
        prob = frames["probabilities"]
        freq = frames["frequentist"]
        sens = frames["sensitivity"]
        outcomes_ctx.append({
            "id": oid, "label": label, "measure": outcome.measure, "unit": unit,
            "k": outcome.k, "n": outcome.n_participants, "mid": outcome.mid,
            "headline": headline(bundle, oid),
            "pooled": tbl.display_frame(pr[pr["outcome"] == oid].drop(columns=["outcome"]),
                                        labels=POOLED_LABELS),
            "probabilities": tbl.display_frame(prob[prob["outcome"] == oid]
                                               .drop(columns=["outcome"])),
            "frequentist": tbl.display_frame(freq[freq["outcome"] == oid]
                                             .drop(columns=["outcome"]),
                                             labels={"i2": "I² (%)", "tau2": "tau²"}),
            "sensitivity": tbl.display_frame(sens[sens["outcome"] == oid]
                                             .drop(columns=["outcome"]),
                                             labels={**POOLED_LABELS, "p_gt_0": "P(> 0)"}),
            "study_effects": tbl.display_frame(se, labels={"baseline_status_value_std":
                                                           f"baseline ({mod.unit})"}),
            "small_study": outcome.small_study,
            "funnel_note": None if o.k >= summ.MIN_TRIALS_FUNNEL else (
                f"No funnel plot or small-study test: {o.k} trial{'s' if o.k != 1 else ''}; "
                f"both need at least {summ.MIN_TRIALS_FUNNEL} trials to say anything "
                "(Cochrane Handbook, section 13.3.5.4)."),
            "analyses": tbl.display_frame(
                tbl.analyses_side_by_side(outcome, bundle.spec.primary_analysis), labels={
                    "k_trials": "k trials", "n_randomised": "n",
                    "estimate": "mu (95% interval)", "p_benefit": "P(benefit)"}),
            "analyses_sensitivity": tbl.display_frame(
                tbl.all_reports_sensitivity(outcome), labels={
                    "k_trials": "k trials", "estimate": "mu (95% interval)",
                    "p_benefit": "P(benefit)"}),
            "fragile": tbl.fragile_text(outcome),
            "single_trial": outcome.k == 1,
            "figures": ofigs,
        })

    frames["vote_count"], swim_figs = swim.section(bundle, effects, fig_dir)
    figure_index += [{k: f[k] for k in ("outcome", "name", "png", "svg", "caption")}
                     for f in swim_figs]
    references = refs.reference_list(studies, refs.read_bib(references_bib))

    for name, df in frames.items():
        atomic_write_text(tab_dir / f"{name}.csv", df.to_csv(index=False, lineterminator="\n"))

    failed = tbl.failed_fits(bundle)
    failed_shown, failed_secondary = summ.split_failed(bundle, failed)
    claims = tbl.claims(bundle)
    findings = _check_findings(check_findings, studies)
    derived = {
        "headlines": [oc["headline"] for oc in outcomes_ctx],
        "tables": {name: tbl.records(df) for name, df in frames.items()},
        "summary_of_findings": sof,
        "summary_of_findings_table": sof_rows,
        "bottom_line": bottom,
        "prisma": flow,
        "prisma_2020": prisma2020,
        "claims": claims,
        "failed_fits": failed,
        "figures": figure_index,
        "citation": {k: v for k, v in citation.items() if k != "found"},
        "references": [{"key": r.key, "study_ids": list(r.study_ids), "text": r.text,
                        "pmid": r.pmid, "doi": r.doi, "url": r.url} for r in references],
    }
    return {
        "bundle": bundle, "bundle_name": bundle_name, "base": base,
        "title": bundle.title, "outcomes": outcomes_ctx, "failed": failed,
        "failed_shown": failed_shown, "failed_secondary": failed_secondary,
        "bottom": bottom, "sof_rows": sof_rows,
        "sof_table": frames["summary_of_findings_table"],
        "has_ratio": any(o.measure in summ.RATIO_MEASURES for o in bundle.outcomes.values()),
        "prisma2020": prisma2020, "rob": rob_lights,
        "rob_table": frames["risk_of_bias"],
        "prisma_svg": Markup(summ.prisma_svg(prisma2020, search)), "search": search,
        "not_used": tbl.display_frame(frames["studies_not_used"]),
        "excluded": tbl.display_frame(frames["studies_excluded"]),
        "curation_notes": _curation_notes(studies),
        "check_findings": (findings if findings is None or "outcome" not in findings
                           else _with_labels(findings, bundle)),
        "claims": claims, "flow": flow, "sof": sof,
        "characteristics": tbl.display_frame(frames["study_characteristics"]),
        "not_poolable": tbl.display_frame(_with_labels(frames["not_poolable"], bundle)),
        "syntheses": tbl.display_frame(frames["published_syntheses"]),
        "diagnostics": tbl.display_frame(frames["diagnostics"], {
            # quadrature errors are tiny (1e-9 exact, 1e-3 grid): two significant digits
            "integration_error": lambda v: "" if v is None else f"{v:.1e}"}),
        "methods": methods_text(bundle, effects, calibration),
        "provenance": provenance_rows(bundle, bundle_name),
        "citation": citation, "moderator": clean_json(mod),
        "outcome_labels": {**{oid: str(v.get("label", oid)) for oid, v in OUTCOMES.items()},
                           **{oid: o.label for oid, o in bundle.outcomes.items()}},
        "derived": derived, "version": nutrimeta.__version__,
        "swim": {"table": frames["vote_count"], "figures": swim_figs},
        "references": references,
        "data_version": bundle.provenance.data_version, "rule": bundle.verdict_rule,
    }


def render_evidence_base(bundle_path: Path, effects: pd.DataFrame, studies: pd.DataFrame,
                         syntheses: pd.DataFrame, out_dir: Path,
                         citation_path: Path | None = None,
                         extra_sections: Sequence[tuple[str, str, str]] = (),
                         search_log: Path | None = None,
                         check_findings: Path | None = None,
                         references_bib: Path | None = None,
                         outcomes: Sequence[str] | None = None,
                         risk_of_bias_csv: Path | None = None) -> Path:
    """Render the report of one evidence base from its saved results.

    Parameters
    ----------
    bundle_path
        ``build/results/<base>.json``.
    effects, studies, syntheses
        Effect-size table and curated tables (rows of other evidence bases are ignored).
    out_dir
        Report folder, e.g. ``reports/<base>``; replaced as a whole only when rendering
        succeeds (the previous report is kept otherwise).
    citation_path
        CITATION.cff; default: the nearest one above ``bundle_path`` (or in the working
        directory).
    extra_sections
        ``(id, title, markdown)`` sections placed before the methods (e.g. what changed since
        the last release); the Markdown is converted to HTML for ``report.html``.
    search_log
        The base's ``SEARCH_LOG.md``: copied beside the report, linked and summarised in the
        flow diagram.
    check_findings
        ``build/check/findings.json`` from ``nutrimeta check``, shown in an appendix.
    references_bib
        The base's ``references.bib``: the reference list (with ``studies.csv``).
    outcomes
        Only these outcomes (``nutrimeta report --outcome``); the report says so.
    risk_of_bias_csv
        The base's ``risk_of_bias.csv`` (risk of bias by domain); when absent, the overall
        judgement of studies.csv is shown.

    Returns
    -------
    Path
        ``out_dir / "report.html"``. The folder also holds ``report.md``, ``results.json``,
        ``figures/*.png|svg`` and ``tables/*.csv``.
    """
    bundle_path = Path(bundle_path)
    out_dir = Path(out_dir)
    bundle = load_bundle(bundle_path)
    if outcomes:
        bundle = outcome_refit.restrict(bundle, outcomes)
        effects = effects[effects["outcome"].isin(list(outcomes))]
    citation = read_citation(citation_path or find_citation(bundle_path.parent),
                             bundle.provenance.data_version)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        cal_path = find_calibration(bundle_path.parent)
        calibration = (json.loads(cal_path.read_text(encoding="utf-8"))
                       if cal_path is not None else None)
        ctx = _build(bundle, bundle_path.name, effects, studies, syntheses, citation, tmp,
                     search_log, check_findings, calibration, references_bib,
                     risk_of_bias_csv)
        ctx["scope_note"] = outcome_refit.scope_note(bundle, outcomes)
        ctx["extra_sections"] = [
            {"id": sid, "title": title, "markdown": body,
             "html": markdown.markdown(body, extensions=["tables"])}
            for sid, title, body in extra_sections]
        env = _environment()
        results = ReportResults(evidence_base=ctx["base"], title=ctx["title"],
                                report_version=nutrimeta.__version__, bundle=bundle,
                                derived=clean_json(ctx["derived"]))
        atomic_write_text(tmp / "results.json", to_json(results))
        atomic_write_text(tmp / "report.md", env.get_template("report.md.j2").render(**ctx))
        atomic_write_text(tmp / "report.html", env.get_template("report.html.j2").render(**ctx))
        _swap_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "report.html"


def render_evidence_bases(jobs: Sequence[Mapping[str, Any]],
                          workers: int | None = None, pool: Executor | None = None
                          ) -> list[Path]:
    """Render several evidence bases (keyword arguments of :func:`render_evidence_base` per
    job), in parallel processes when there is more than one job and more than one core.

    Each base is rendered by one process into its own staging folder and swapped in whole, so
    the output does not depend on the number of workers. The workers start from a fork server
    that has imported the report stage once (forking the calling process, whose libraries may
    run threads, could deadlock); as with any ``multiprocessing`` start method but fork, a
    calling script needs the ``if __name__ == "__main__":`` guard. The largest bundles are
    handed out first; the paths come back in the order of ``jobs``.

    Parameters
    ----------
    jobs
        One mapping per evidence base, e.g. ``{"bundle_path": ..., "effects": ..., ...}``.
    workers
        Number of processes; default: 2, or 1 on a single core (then no process is started).
    pool
        Worker processes already running other work (e.g. the cross-nutrient fits): every
        job is queued there, and this process renders each job no worker has started yet
        (largest first), so the bases are shared between this process and the workers as
        they come free. ``workers`` is then not used.
    """
    order = sorted(range(len(jobs)), key=lambda i: -Path(jobs[i]["bundle_path"]).stat().st_size)
    if pool is not None:
        queued = {i: pool.submit(render_evidence_base, **jobs[i]) for i in order}
        done = {i: render_evidence_base(**jobs[i]) for i in order if queued[i].cancel()}
        return [done[i] if i in done else queued[i].result() for i in range(len(jobs))]
    n = min(len(jobs), workers if workers is not None else min(2, os.cpu_count() or 1))
    if n <= 1:
        return [render_evidence_base(**job) for job in jobs]
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
        futures = {i: pool.submit(render_evidence_base, **jobs[i]) for i in order}
        return [futures[i].result() for i in range(len(jobs))]


# --------------------------------------------------------------------------- index


def _rendered_bottom_line(report_dir: Path, bundle: Bundle) -> dict[str, Any]:
    """The bottom line of a rendered report (its ``results.json``), so the index says exactly
    what the report says; computed without GRADE certainty when the report is missing."""
    path = report_dir / "results.json"
    if path.is_file():
        derived = json.loads(path.read_text(encoding="utf-8")).get("derived") or {}
        if derived.get("bottom_line"):
            return dict(derived["bottom_line"])
    return summ.bottom_line(bundle, [])


def render_index(bundle_paths: Iterable[Path], out_dir: Path,
                 cross_nutrient_path: Path | None = None) -> Path:
    """Write ``out_dir/index.html``: headline findings per evidence base and the cross-nutrient
    synthesis.

    Parameters
    ----------
    bundle_paths
        Results bundles ``build/results/<base>.json`` (a ``cross_nutrient.json`` among them is
        used as the cross-nutrient bundle, not as an evidence base).
    out_dir
        The ``reports/`` folder; each base's report is linked as ``<base>/report.html``.
    cross_nutrient_path
        Cross-nutrient bundle; default ``cross_nutrient.json`` beside the first bundle, used
        when it exists.

    Notes
    -----
    Shape of the cross-nutrient bundle (``build/results/cross_nutrient.json``); slopes are on a
    common scale so that the nutrients can be pooled::

        {
          "title": "...",                      # optional
          "scale": "SMD per 1 SD of baseline status",
          "slopes": [{"evidence_base": "zinc_testosterone", "outcome": "total_testosterone",
                      "label": "Zinc -> total testosterone", "k": 6,
                      "mean": -0.31, "q025": -0.58, "q975": -0.04, "p_lt_0": 0.98}],
          "pooled_slope": {"mean": -0.21, "q025": -0.47, "q975": 0.05, "p_lt_0": 0.95},
          "tau": {"mean": .., "q025": .., "q975": ..},          # optional, between bases
          "diagnostics": {"passed": true, "problems": [], ...}  # optional
          "status": "ok | failed"                               # optional
        }

    ``p_lt_0`` is P(slope < 0): the effect shrinks as baseline status rises.
    """
    out_dir = Path(out_dir)
    paths = [Path(p) for p in bundle_paths]
    cross_path = cross_nutrient_path
    base_paths = []
    for p in paths:
        if p.name == CROSS_NUTRIENT_NAME:
            cross_path = cross_path or p
        else:
            base_paths.append(p)
    if cross_path is None and base_paths:
        cand = base_paths[0].parent / CROSS_NUTRIENT_NAME
        cross_path = cand if cand.is_file() else None
    bases = []
    any_failed = False
    for p in sorted(base_paths, key=lambda q: q.name):
        b = load_bundle(p)
        failed, _secondary = summ.split_failed(b, tbl.failed_fits(b))
        any_failed |= bool(failed)
        bases.append({"base": b.evidence_base, "title": b.title,
                      "link": f"{b.evidence_base}/report.html", "failed": failed,
                      "bottom": _rendered_bottom_line(out_dir / b.evidence_base, b),
                      "data_version": b.provenance.data_version,
                      "headlines": [headline(b, oid) for oid in b.outcomes],
                      "claims": tbl.claims(b)})
    cross = None
    if cross_path is not None and Path(cross_path).is_file():
        typed = load_cross(cross_path)
        c = clean_json(typed)
        cfailed = (typed.status == "failed"
                   or (typed.diagnostics is not None and not typed.diagnostics.passed))
        any_failed |= cfailed
        hidden = typed.pooled_moderator is not None and not typed.pooled_moderator.estimable
        with figs.figure_style():
            fig = None if hidden else figs.cross_nutrient(typed)
            png = None
            if fig is not None:
                with tempfile.TemporaryDirectory() as td:
                    png = figs.save_figure(fig, Path(td), "cross_nutrient")["png_base64"]
        slope_rows = [{"evidence base": r.evidence_base, "outcome": r.label or r.outcome,
                       "k": r.k, "slope": r.mean, "2.5%": r.q025, "97.5%": r.q975,
                       "p_lt_0": r.p_lt_0} for r in typed.slopes]
        if hidden:  # one rule: no number for a pooled slope the rule rejects
            slope_rows = [{**r, "slope": None, "2.5%": None, "97.5%": None, "p_lt_0": None}
                          for r in slope_rows]
        if typed.pooled_slope is not None and not hidden:
            ps = typed.pooled_slope
            slope_rows.append({"evidence base": "all", "outcome": "pooled slope", "k": None,
                               "slope": ps.mean, "2.5%": ps.q025, "97.5%": ps.q975,
                               "p_lt_0": ps.p_lt_0})
        rows = pd.DataFrame(slope_rows)
        cross = {"title": typed.title, "scale": typed.scale,
                 "pooled": c.get("pooled_slope") or {}, "tau": c.get("tau"),
                 "failed": cfailed,
                 "problems": typed.diagnostics.problems if typed.diagnostics else None,
                 "status": typed.status, "reason": typed.reason or "",
                 "moderator": typed.moderator, "measure": typed.measure,
                 "multivariate": multivariate_sentences(typed),
                 "pooled_hidden": (typed.pooled_moderator.statement if hidden
                                   and typed.pooled_moderator else None),
                 "table": tbl.display_frame(rows, labels={"p_lt_0": "P(slope < 0)"}),
                 "png": png}
    env = _environment()
    text = env.get_template("index.html.j2").render(bases=bases, cross=cross,
                                                     any_failed=any_failed,
                                                     version=nutrimeta.__version__)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "index.html"
    atomic_write_text(target, text)
    return target
