"""Render the per-evidence-base reports and the index page from saved results.

Nothing here fits a model: every number comes from the results bundle
(``build/results/<base>.json``, shape in ``docs/pipeline.md``), the effect-size table and the
curated tables.

Bundle fields used, beyond the documented shape
-----------------------------------------------
All optional; the report degrades gracefully without them.

``outcomes.<o>.primary_model``
    Model id giving the headline pooled effect (default: ``random_effects`` if ok).
``outcomes.<o>.mid``
    Minimal important difference on the effect scale (else ``spec.outcomes.<o>.mid``); used
    by the GRADE imprecision rule and the ``P(mu > MID)`` text.
``outcomes.<o>.models.<m>.regression_line``
    ``[{x, mean, q025, q975}]``: posterior regression line and 95% band on the moderator scale
    (``x`` in ``spec.moderator.unit``), drawn on the effect-versus-baseline plot.
``outcomes.<o>.models.<m>.density``
    ``{"effect_deficient": {"grid": [...], "density": [...]}, "effect_replete": {...}}``:
    posterior density grids (e.g. KDE of the draws). Without them the density plot uses a
    normal approximation from the summaries' mean and sd, and says so.
``spec.moderator``
    ``{name, unit, cutoff, cutoff_source, categories}``: the baseline-status moderator.
``spec.priors``, ``spec.conversions``, ``spec.sensitivity``, ``spec.prepost_correlation``
    Rendered in the methods text as given (strings, lists or mappings).

I² values (``models.<m>.i2`` and ``frequentist.*.i2``) are read as percentages (0-100).
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import markdown
import pandas as pd
import yaml
from markupsafe import Markup

import nutrimeta
from nutrimeta.report import figures as figs
from nutrimeta.report import tables as tbl
from nutrimeta.report.fmt import fmt, fmt_estimate, fmt_int, fmt_p, fmt_prob, fmt_prob_eq

TEMPLATES = Path(__file__).parent / "templates"
CROSS_NUTRIENT_NAME = "cross_nutrient.json"

__all__ = ["render_evidence_base", "render_index"]


# --------------------------------------------------------------------------- file helpers


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes` (newlines kept as ``\\n``)."""
    atomic_write_bytes(path, text.encode("utf-8"))


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


def dumps_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no NaN)."""
    return json.dumps(_json_ready(obj), indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"


def _json_ready(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return tbl.records(obj)
    return tbl.clean(obj)


# --------------------------------------------------------------------------- text helpers


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def html_table(df: pd.DataFrame, cls: str = "data") -> Markup:
    """A formatted frame as an HTML table (cells escaped)."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False, name=None))
    return Markup(f'<table class="{_esc(cls)}"><thead><tr>{head}</tr></thead>'
                  f"<tbody>{body}</tbody></table>")


def md_table(df: pd.DataFrame) -> str:
    """A formatted frame as a GitHub-flavoured Markdown table."""
    if df.empty:
        return "_None._"

    def cell(v: Any) -> str:
        return str("" if v is None else v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in df.itertuples(index=False, name=None)]
    return "\n".join(lines)


def describe(value: Any) -> str:
    """Plain text for a spec value (string, number, list or mapping)."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {describe(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(describe(v) for v in value)
    return str(value)


def read_citation(path: Path | None) -> dict[str, Any]:
    """Citation text from CITATION.cff (Citation File Format), read with PyYAML."""
    if path is None or not path.is_file():
        return {"text": "Citation metadata (CITATION.cff) not found.", "bibtex": "",
                "message": "", "data": [], "found": False}
    cff = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    authors = ", ".join(a.get("name") or " ".join(filter(None, (a.get("given-names"),
                                                               a.get("family-names"))))
                        for a in cff.get("authors") or [])
    title = cff.get("title", "")
    version = cff.get("version", "")
    date = str(cff.get("date-released", ""))
    text = f"{authors}. {title}. Version {version}"
    text += f" ({date})." if date else "."
    if cff.get("doi"):
        text += f" https://doi.org/{cff['doi']}"
    data_refs = [r for r in cff.get("references") or [] if r.get("type") == "data"]
    data_text = [f"{r.get('title')}, version {r.get('version')}." for r in data_refs]
    year = date[:4]
    bibtex = ("@software{nutrimeta,\n"
              f"  author  = {{{authors}}},\n  title   = {{{title}}},\n"
              f"  version = {{{version}}},\n  year    = {{{year}}}\n}}")
    return {"text": text, "data": data_text, "message": cff.get("message", ""),
            "bibtex": bibtex, "found": True}


def find_citation(start: Path) -> Path | None:
    """Nearest CITATION.cff in ``start`` or its parents, else in the working directory."""
    for folder in [start.resolve(), *start.resolve().parents, Path.cwd()]:
        cand = folder / "CITATION.cff"
        if cand.is_file():
            return cand
    return None


def headline(bundle: Mapping[str, Any], oid: str) -> dict[str, Any]:
    """The at-a-glance statement for one outcome."""
    o = bundle["outcomes"][oid]
    unit = o.get("effect_unit") or ""
    out: dict[str, Any] = {"outcome": oid, "label": o.get("label", oid), "k": o.get("k"),
                           "n_participants": o.get("n_participants"), "unit": unit}
    pm = tbl.primary_model(o)
    parts: list[str] = []
    if pm is None:
        out["text"] = "No model could be summarised for this outcome (see diagnostics)."
        return out
    mid, m = pm
    mu = m["parameters"]["mu"]
    probs = m.get("probabilities") or {}
    measure = o.get("measure") or "effect"
    parts.append(f"pooled {measure} {fmt_estimate(mu)}{' ' + unit if unit else ''} "
                 f"(95% CrI; {mid}, k = {fmt_int(o.get('k'))}, "
                 f"n = {fmt_int(o.get('n_participants'))})")
    if "P(mu > 0)" in probs:
        parts.append(f"P(mu > 0) {fmt_prob_eq(probs['P(mu > 0)'])}")
    for model in (o.get("models") or {}).values():
        p = model.get("parameters") or {}
        if model.get("status") == "ok" and "effect_deficient" in p and "effect_replete" in p:
            parts.append(f"deficient {fmt_estimate(p['effect_deficient'])}, "
                         f"replete {fmt_estimate(p['effect_replete'])}")
            break
    for model in (o.get("models") or {}).values():
        p = model.get("parameters") or {}
        if model.get("status") == "ok" and "slope" in p:
            slope_txt = f"slope on baseline status {fmt_estimate(p['slope'])}"
            ps = (model.get("probabilities") or {}).get("P(slope < 0)")
            if ps is not None:
                slope_txt += f", P(slope < 0) {fmt_prob_eq(ps)}"
            parts.append(slope_txt)
            break
    out["text"] = "; ".join(parts) + "."
    out["mean"], out["q025"], out["q975"] = mu.get("mean"), mu.get("q025"), mu.get("q975")
    return out


def _tau_label(t: Mapping[str, Any]) -> str:
    names = {"half_normal": "HalfNormal", "half_cauchy": "HalfCauchy",
             "half_student_t": f"HalfStudentT(nu={fmt(t.get('nu'))}) scaled by",
             "exponential": "Exponential with mean"}
    return f"tau ~ {names.get(t.get('family'), t.get('family'))}({fmt(t.get('scale'))})"


def methods_text(bundle: Mapping[str, Any], effects: pd.DataFrame) -> list[str]:
    """Methods paragraphs generated from the analysis spec and the bundle."""
    spec = bundle.get("spec") or {}
    prov = bundle.get("provenance") or {}
    paras: list[str] = []
    measures = "; ".join(f"{o.get('label', oid)}: {o.get('measure')}"
                         f"{' in ' + o['effect_unit'] if o.get('effect_unit') else ''}"
                         for oid, o in bundle["outcomes"].items())
    paras.append(f"Effect measures (intervention minus control, or post minus pre for single-arm "
                 f"trials): {measures}. Effects, sampling variances and their derivations are "
                 "listed per trial in the effect-size table.")
    models: dict[str, str] = {}
    for o in bundle["outcomes"].values():
        for mid, m in (o.get("models") or {}).items():
            models.setdefault(mid, m.get("description") or m.get("model") or mid)
    if models:
        paras.append("Models: " + " ".join(f"{mid}: {d}" for mid, d in models.items())
                     + " I² is tau² / (tau² + s²), with s² the typical within-study variance "
                     "of Higgins & Thompson (2002); its posterior is reported in percent.")
    mod = tbl.moderator(bundle)
    if mod:
        txt = (f"Baseline-status moderator: {mod.get('name', 'baseline status')}"
               f"{' (' + mod['unit'] + ')' if mod.get('unit') else ''}")
        if mod.get("cutoff") is not None:
            txt += f"; deficiency cut-off {fmt(mod['cutoff'])} {mod.get('unit') or ''}".rstrip()
            if mod.get("cutoff_source"):
                txt += f" ({mod['cutoff_source']})"
        if mod.get("categories"):
            txt += f"; categories: {describe(mod['categories'])}"
        paras.append(txt + ".")
    if spec.get("priors"):
        paras.append(f"Priors: {describe(spec['priors'])}.")
    declared = [o for o in spec.get("outcomes") or [] if isinstance(o, Mapping)
                and {"id", "mu_prior_sd", "tau_prior", "slope_prior_sd", "mid"} <= set(o)]
    if declared:
        unit = mod.get("unit") or "unit of the moderator"
        paras.append("Priors (declared in the analysis spec): " + "; ".join(
            f"{o['id']}: mu ~ Normal(0, {fmt(o['mu_prior_sd'])}), "
            f"{_tau_label(o['tau_prior'])}, slope ~ Normal(0, {fmt(o['slope_prior_sd'])}) per "
            f"{unit}; minimal important difference {fmt(o['mid'])} ({o['mid_source']})"
            for o in declared) + ".")
    if isinstance(mod.get("latent"), Mapping) and all(
            isinstance(v, Mapping) for v in mod["latent"].values()):
        paras.append("Trials without a numeric baseline level enter the continuous "
                     "meta-regression with a latent level (minus the cut-off, in "
                     f"{mod.get('unit', '')}) drawn from a normal distribution per status "
                     "category: " + "; ".join(
                         f"{cat} mean {fmt(v['mean'])}, SD {fmt(v['sd'])}"
                         for cat, v in mod["latent"].items())
                     + f". Effects in deficient and replete populations are reported at "
                     f"{fmt(mod.get('reference_deficient'))} and "
                     f"{fmt(mod.get('reference_replete'))} {mod.get('unit', '')} from the "
                     "cut-off.")
    conv: list[str] = []
    if spec.get("conversions"):
        conv.append(describe(spec["conversions"]))
    if spec.get("prepost_correlation") is not None:
        conv.append(f"change-score SDs derived from baseline and follow-up SDs with a pre/post "
                    f"correlation of {describe(spec['prepost_correlation'])} unless a row "
                    "states its own")
    if spec.get("unlabelled_spread"):
        conv.append(f"a dispersion printed as a bare '±' read as "
                    f"{str(spec['unlabelled_spread']).upper()}")
    conv.append("means and SDs from medians with IQR or range by Luo et al. (2018) and Wan et "
                "al. (2014); SD from SE, confidence interval or p-value by the Cochrane Handbook "
                "formulas; units harmonised with pint (every trial's path is its derivation "
                "in the effect-size table)")
    paras.append("Conversions: " + "; ".join(conv) + ".")
    sens = spec.get("sensitivity")
    if isinstance(sens, list | tuple | str):
        paras.append(f"Sensitivity analyses: {describe(sens)}.")
    elif sens:
        parts = []
        if sens.get("tau_priors") and all(isinstance(t, Mapping) for t in sens["tau_priors"]):
            parts.append("heterogeneity priors " + ", ".join(_tau_label(t)
                                                             for t in sens["tau_priors"]))
        if sens.get("leave_one_out"):
            parts.append("leave-one-trial-out")
        if sens.get("prepost_correlations"):
            parts.append("pre/post correlation " + ", ".join(
                fmt(r) for r in sens["prepost_correlations"]))
        if isinstance(sens.get("unlabelled_spread"), list | tuple):
            parts.append("bare '±' read as " + " or ".join(
                "excluded" if u == "exclude" else u.upper() for u in sens["unlabelled_spread"]))
        if parts:
            paras.append("Sensitivity analyses (exact random-effects posterior): "
                         + "; ".join(parts) + ".")
    sampler = prov.get("sampler") or spec.get("sampler")
    if sampler:
        paras.append(f"Sampling: {describe(sampler)}; seed {prov.get('seed', 'not recorded')}. "
                     "Fits are flagged when R-hat, effective sample sizes, divergences or "
                     "E-BFMI fail their thresholds (diagnostics section).")
    paras.append("Frequentist random-effects estimates (REML and DerSimonian-Laird) are shown for "
                 "comparison. Small-study effects are checked with an Egger-type regression test, "
                 "which has low power with fewer than 10 trials and cannot separate publication "
                 "bias from other causes of asymmetry. GRADE domains carry automated suggestions "
                 "from stated rules; a reviewer makes the judgement.")
    return paras


def provenance_rows(bundle: Mapping[str, Any], bundle_name: str) -> list[tuple[str, str]]:
    """Key/value rows of the provenance block."""
    prov = bundle.get("provenance") or {}
    rows = [("results bundle", bundle_name),
            ("package version (fit)", str(prov.get("package_version", ""))),
            ("package version (report)", nutrimeta.__version__),
            ("data version", str(prov.get("data_version", ""))),
            ("data hash", str(prov.get("data_hash", ""))),
            ("spec hash", str(prov.get("spec_hash", ""))),
            ("seed", str(prov.get("seed", ""))),
            ("sampler", describe(prov.get("sampler") or {})),
            ("run date", str(prov.get("created", "")))]
    if prov.get("lock_hash"):
        rows.append(("install lock (requirements.lock)", str(prov["lock_hash"])))
    if prov.get("lock_mismatches"):
        rows.append(("departures from the lock", describe(prov["lock_mismatches"])))
    rows += [(f"version: {k}", str(v)) for k, v in sorted((prov.get("versions") or {}).items())]
    return rows


def _environment() -> jinja2.Environment:
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

POOLED_LABELS = {"q025": "2.5%", "q975": "97.5%"}


def _load_bundle(bundle_path: Path) -> dict[str, Any]:
    bundle = json.loads(Path(bundle_path).read_text(encoding="utf-8"))
    for key in ("evidence_base", "outcomes"):
        if key not in bundle:
            raise ValueError(f"results bundle {Path(bundle_path).name} has no '{key}'")
    return bundle


def _build(bundle: dict[str, Any], bundle_name: str, effects: pd.DataFrame,
           studies: pd.DataFrame, syntheses: pd.DataFrame, citation: dict[str, Any],
           out: Path) -> dict[str, Any]:
    """Write figures and tables into ``out`` and return the template context."""
    base = bundle["evidence_base"]
    fig_dir = out / "figures"
    tab_dir = out / "tables"
    fig_dir.mkdir(parents=True)
    tab_dir.mkdir(parents=True)
    mod = tbl.moderator(bundle)

    frames: dict[str, pd.DataFrame] = {
        "study_characteristics": tbl.study_characteristics(studies, base),
        "pooled_results": tbl.pooled_results(bundle),
        "probabilities": tbl.probabilities(bundle),
        "frequentist": tbl.frequentist(bundle),
        "small_study": tbl.small_study(bundle),
        "not_poolable": tbl.not_poolable(bundle, effects),
        "sensitivity": tbl.sensitivity(bundle),
        "diagnostics": tbl.diagnostics(bundle),
        "published_syntheses": tbl.published_syntheses(bundle, syntheses),
    }
    sof = tbl.summary_of_findings(bundle, studies)
    frames["summary_of_findings"] = tbl.summary_of_findings_frame(sof)
    flow = tbl.prisma(studies, effects, base)
    frames["prisma_flow"] = tbl.prisma_frame(flow)

    outcomes_ctx: list[dict[str, Any]] = []
    figure_index: list[dict[str, str]] = []
    for oid, o in bundle["outcomes"].items():
        label = o.get("label", oid)
        pm = tbl.primary_model(o)
        pmodel = pm[1] if pm else None
        se = tbl.study_effects(o)
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

        unit = o.get("effect_unit") or ""
        with figs.figure_style():
            add(figs.forest(o, pmodel, label), "forest",
                f"Forest plot, {label} ({o.get('measure')}{', ' + unit if unit else ''}). "
                "Observed effects with 95% confidence intervals (marker size = weight, shape = "
                "design, open = non-randomised), shrunken trial estimates with 95% credible "
                "intervals, pooled mean (diamond, 95% CrI) and 95% prediction interval.")
            line_model = next((m for m in (o.get("models") or {}).values()
                               if m.get("status") == "ok" and m.get("regression_line")), None)
            add(figs.effect_vs_baseline(o, line_model, label, mod), "effect_vs_baseline",
                f"Effect versus baseline status, {label}. Bubble area is proportional to "
                "precision (1/SE²); colour gives the baseline status category"
                + ("; line and band: posterior mean regression line and 95% credible band"
                   if line_model else "; no regression line in the results")
                + (f"; dotted line: deficiency cut-off {fmt(mod.get('cutoff'))} "
                   f"{mod.get('unit') or ''}" if mod.get("cutoff") is not None else "") + ".")
            dens_model = next((m for m in (o.get("models") or {}).values()
                               if m.get("status") == "ok"
                               and {"effect_deficient", "effect_replete"}
                               <= set(m.get("parameters") or {})), None)
            if dens_model is not None:
                res = figs.subgroup_densities(o, dens_model, label)
                if res is not None:
                    fig, approx = res
                    add(fig, "density_by_status",
                        f"Posterior density of the pooled effect on {label} in deficient and "
                        "replete populations"
                        + (" (normal approximation from posterior mean and SD)." if approx
                           else " (density grids from the posterior draws)."))
            centre = (pmodel or {}).get("parameters", {}).get("mu", {}).get("mean") \
                if pmodel else None
            ss = o.get("small_study") or {}
            add(figs.funnel(o, centre, label), "funnel",
                f"Contour-enhanced funnel plot, {label}: shading marks where a trial's own "
                "two-sided p-value against no effect falls (p < 0.01, 0.01-0.05, 0.05-0.10, "
                "> 0.10); dashed lines: 95% pseudo-confidence limits around the pooled mean. "
                f"Egger-type small-study test: intercept {fmt(ss.get('egger_intercept'))}, "
                f"p = {fmt_p(ss.get('p_value'))}, k = {fmt_int(ss.get('k'))}. "
                + str(ss.get("caveat") or "The test has low power with fewer than 10 trials."))
            add(figs.cumulative(o, label), "cumulative",
                f"Cumulative evidence, {label}: pooled mean and 95% CrI after adding each trial "
                "in order of publication.")
            add(figs.tau_prior_posterior(o, label), "tau_prior_posterior",
                f"Prior (dashed) and posterior (solid) density of tau, the between-trial "
                f"standard deviation, {label}.")
            add(figs.sensitivity(o, (pmodel or {}).get("parameters", {}).get("mu")
                                 if pmodel else None, label), "sensitivity",
                f"Sensitivity analyses, {label}: pooled mean and 95% CrI under alternative "
                "priors, leaving out one trial at a time and other pre/post correlations.")

        pr = frames["pooled_results"]
        prob = frames["probabilities"]
        freq = frames["frequentist"]
        sens = frames["sensitivity"]
        outcomes_ctx.append({
            "id": oid, "label": label, "measure": o.get("measure"), "unit": unit,
            "k": o.get("k"), "n": o.get("n_participants"), "mid": tbl.outcome_mid(bundle, oid),
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
                                                           f"baseline ({mod.get('unit', '')})"}),
            "small_study": o.get("small_study") or {},
            "figures": ofigs,
        })

    for name, df in frames.items():
        atomic_write_text(tab_dir / f"{name}.csv", df.to_csv(index=False, lineterminator="\n"))

    failed = tbl.failed_fits(bundle)
    claims = tbl.claims(bundle)
    derived = {
        "headlines": [oc["headline"] for oc in outcomes_ctx],
        "tables": {name: tbl.records(df) for name, df in frames.items()},
        "summary_of_findings": sof,
        "prisma": flow,
        "claims": claims,
        "failed_fits": failed,
        "figures": figure_index,
        "citation": {k: v for k, v in citation.items() if k != "found"},
    }
    return {
        "bundle": bundle, "bundle_name": bundle_name, "base": base,
        "title": bundle.get("title") or base, "outcomes": outcomes_ctx, "failed": failed,
        "claims": claims, "flow": flow, "sof": sof,
        "characteristics": tbl.display_frame(frames["study_characteristics"]),
        "not_poolable": tbl.display_frame(frames["not_poolable"]),
        "syntheses": tbl.display_frame(frames["published_syntheses"]),
        "diagnostics": tbl.display_frame(frames["diagnostics"]),
        "methods": methods_text(bundle, effects),
        "provenance": provenance_rows(bundle, bundle_name),
        "citation": citation, "moderator": mod,
        "outcome_labels": {oid: o.get("label", oid) for oid, o in bundle["outcomes"].items()},
        "derived": derived, "version": nutrimeta.__version__,
        "data_version": (bundle.get("provenance") or {}).get("data_version") or "not recorded",
    }


def render_evidence_base(bundle_path: Path, effects: pd.DataFrame, studies: pd.DataFrame,
                         syntheses: pd.DataFrame, out_dir: Path,
                         citation_path: Path | None = None,
                         extra_sections: Sequence[tuple[str, str, str]] = ()) -> Path:
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

    Returns
    -------
    Path
        ``out_dir / "report.html"``. The folder also holds ``report.md``, ``results.json``,
        ``figures/*.png|svg`` and ``tables/*.csv``.
    """
    bundle_path = Path(bundle_path)
    out_dir = Path(out_dir)
    bundle = _load_bundle(bundle_path)
    citation = read_citation(citation_path or find_citation(bundle_path.parent))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        ctx = _build(bundle, bundle_path.name, effects, studies, syntheses, citation, tmp)
        ctx["extra_sections"] = [
            {"id": sid, "title": title, "markdown": body,
             "html": markdown.markdown(body, extensions=["tables"])}
            for sid, title, body in extra_sections]
        env = _environment()
        results = {"evidence_base": ctx["base"], "title": ctx["title"],
                   "report_version": nutrimeta.__version__, "bundle": bundle,
                   "derived": ctx["derived"]}
        atomic_write_text(tmp / "results.json", dumps_json(results))
        atomic_write_text(tmp / "report.md", env.get_template("report.md.j2").render(**ctx))
        atomic_write_text(tmp / "report.html", env.get_template("report.html.j2").render(**ctx))
        _swap_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "report.html"


# --------------------------------------------------------------------------- index


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
        b = _load_bundle(p)
        failed = tbl.failed_fits(b)
        any_failed |= bool(failed)
        bases.append({"base": b["evidence_base"], "title": b.get("title") or b["evidence_base"],
                      "link": f"{b['evidence_base']}/report.html", "failed": failed,
                      "data_version": (b.get("provenance") or {}).get("data_version", ""),
                      "headlines": [headline(b, oid) for oid in b["outcomes"]],
                      "claims": tbl.claims(b)})
    cross = None
    if cross_path is not None and Path(cross_path).is_file():
        c = json.loads(Path(cross_path).read_text(encoding="utf-8"))
        cfailed = (c.get("status") == "failed"
                   or (c.get("diagnostics") or {}).get("passed") is False)
        any_failed |= cfailed
        with figs.figure_style():
            fig = figs.cross_nutrient(c)
            png = None
            if fig is not None:
                with tempfile.TemporaryDirectory() as td:
                    png = figs.save_figure(fig, Path(td), "cross_nutrient")["png_base64"]
        rows = pd.DataFrame([{"evidence base": r.get("evidence_base"),
                              "outcome": r.get("label") or r.get("outcome"), "k": r.get("k"),
                              "slope": r.get("mean"), "2.5%": r.get("q025"),
                              "97.5%": r.get("q975"), "p_lt_0": r.get("p_lt_0")}
                             for r in [*c.get("slopes", []),
                                       {**(c.get("pooled_slope") or {}),
                                        "evidence_base": "all", "label": "pooled slope"}]])
        cross = {"title": c.get("title") or "Cross-nutrient synthesis", "scale": c.get("scale"),
                 "pooled": c.get("pooled_slope") or {}, "tau": c.get("tau"),
                 "failed": cfailed, "problems": (c.get("diagnostics") or {}).get("problems"),
                 "status": c.get("status", "ok"), "reason": c.get("reason", ""),
                 "moderator": c.get("moderator", ""), "measure": c.get("measure", ""),
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
