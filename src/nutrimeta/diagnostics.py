"""MCMC convergence diagnostics and posterior summaries of a fit (ArviZ 1.x / DataTree).

:func:`check` condenses a fit into the numbers the results bundle reports (largest
rank-normalised split R-hat, smallest bulk and tail ESS, divergences, smallest E-BFMI per
chain), a pass/fail verdict against :class:`Thresholds` and readable problem messages.
:func:`summarise` gives mean, median, sd, 2.5%/97.5% quantiles and the MCSE of the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # arviz-stats (and xarray) are imported where a fit is checked
    import xarray as xr

_SAMPLE_DIMS = ("chain", "draw")


@dataclass(frozen=True)
class Thresholds:
    """Limits a fit must meet to be reported without a warning."""

    rhat_max: float = 1.01
    ess_bulk_min: float = 400.0
    ess_tail_min: float = 400.0
    divergences_max: int = 0
    ebfmi_min: float = 0.3


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of one fit (worst value over all checked parameters)."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    ebfmi_min: float
    ebfmi: list[float] = field(default_factory=list)
    passed: bool = True
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``diagnostics`` entry of the results bundle."""
        d = asdict(self)
        d.pop("ebfmi")
        return d


def _posterior(dt: xr.DataTree, var_names: Sequence[str] | None) -> xr.Dataset:
    ds = dt["posterior"].to_dataset()
    if var_names is not None:
        ds = ds[list(var_names)]
    return ds


def _element_name(da: xr.DataArray, flat_index: int) -> str:
    if da.ndim == 0:
        return str(da.name)
    idx = np.unravel_index(flat_index, da.shape)
    labels = []
    for dim, i in zip(da.dims, idx, strict=True):
        labels.append(str(da[dim].values[i]) if dim in da.coords else str(i))
    return f"{da.name}[{', '.join(labels)}]"


def _varying(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Per variable, a mask of elements whose draws vary (constants have no R-hat or ESS)."""
    return {
        str(v): (ds[v].max(dim=_SAMPLE_DIMS) > ds[v].min(dim=_SAMPLE_DIMS))
        for v in ds.data_vars
    }


def _worst(
    stat: xr.Dataset, varying: dict[str, xr.DataArray], largest: bool
) -> tuple[float, dict[str, tuple[float, str]]]:
    """Overall worst value and, per variable, its worst value and element name."""
    per_var: dict[str, tuple[float, str]] = {}
    for v, mask in varying.items():
        vals = np.asarray(stat[v].where(mask).values, dtype=float)
        if not np.any(np.asarray(mask.values)):
            continue
        flat = vals.ravel()
        # an undefined statistic of a varying quantity counts as the worst possible value
        flat = np.where(np.isnan(flat) & np.asarray(mask.values).ravel(),
                        np.inf if largest else 0.0, flat)
        i = int(np.nanargmax(flat) if largest else np.nanargmin(flat))
        per_var[v] = (float(flat[i]), _element_name(stat[v], i))
    if not per_var:
        return (np.nan, per_var)
    values = [x for x, _ in per_var.values()]
    return (max(values) if largest else min(values)), per_var


def ebfmi(dt: xr.DataTree) -> np.ndarray:
    """E-BFMI of each chain from the ``energy`` sample statistic."""
    import arviz_stats as azs

    res = azs.bfmi(dt["sample_stats"].to_dataset()[["energy"]])
    return np.atleast_1d(np.asarray(res["energy"].values, dtype=float))


def check(
    dt: xr.DataTree,
    thresholds: Thresholds | None = None,
    var_names: Sequence[str] | None = None,
) -> Diagnostics:
    """Check convergence of a fit.

    Parameters
    ----------
    dt
        Fit with ``posterior`` and ``sample_stats`` groups.
    thresholds
        Limits; default :class:`Thresholds()` (R-hat <= 1.01, bulk/tail ESS >= 400,
        no divergences, E-BFMI >= 0.3).
    var_names
        Posterior variables to check (default all; constant elements are skipped).

    Returns
    -------
    Diagnostics
        Worst values, ``passed`` and one message per violated limit and variable.
    """
    import arviz_stats as azs

    th = thresholds or Thresholds()
    ds = _posterior(dt, var_names)
    varying = _varying(ds)
    with np.errstate(invalid="ignore", divide="ignore"):  # constant elements are skipped
        rhat_max, rhat_v = _worst(azs.rhat(ds, method="rank"), varying, largest=True)
        bulk_min, bulk_v = _worst(azs.ess(ds, method="bulk"), varying, largest=False)
        tail_min, tail_v = _worst(azs.ess(ds, method="tail"), varying, largest=False)
    stats = dt["sample_stats"].to_dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    bfmi = ebfmi(dt) if "energy" in stats else np.array([np.nan])

    problems = []
    for x, name in rhat_v.values():
        if not x <= th.rhat_max:
            problems.append(f"R-hat {x:.3f} > {th.rhat_max:g} for {name}")
    for label, per_var, limit in (("bulk", bulk_v, th.ess_bulk_min),
                                  ("tail", tail_v, th.ess_tail_min)):
        for x, name in per_var.values():
            if not x >= limit:
                problems.append(f"{label} ESS {x:.0f} < {limit:g} for {name}")
    if divergences > th.divergences_max:
        n_draws = stats.sizes.get("chain", 1) * stats.sizes.get("draw", 1)
        problems.append(f"{divergences} divergent transitions of {n_draws} draws "
                        f"(allowed {th.divergences_max})")
    for chain, b in enumerate(bfmi):
        if not b >= th.ebfmi_min:
            problems.append(f"E-BFMI {b:.2f} < {th.ebfmi_min:g} in chain {chain}")
    return Diagnostics(
        rhat_max=float(rhat_max),
        ess_bulk_min=float(bulk_min),
        ess_tail_min=float(tail_min),
        divergences=divergences,
        ebfmi_min=float(np.min(bfmi)),
        ebfmi=[float(b) for b in bfmi],
        passed=not problems,
        problems=problems,
    )


def summarise(
    dt: xr.DataTree, var_names: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """Posterior mean, median, sd, 2.5% and 97.5% quantiles and MCSE of the mean.

    Vector-valued parameters are flattened to ``name[label]`` keys.
    """
    import arviz_stats as azs

    ds = _posterior(dt, var_names)
    mean = azs.mean(ds, dim=list(_SAMPLE_DIMS), round_to="none")
    median = azs.median(ds, dim=list(_SAMPLE_DIMS), round_to="none")
    sd = azs.std(ds, dim=list(_SAMPLE_DIMS), round_to="none")
    mcse = azs.mcse(ds, method="mean")
    q = ds.quantile([0.025, 0.975], dim=list(_SAMPLE_DIMS))
    out: dict[str, dict[str, float]] = {}
    for v in ds.data_vars:
        da = ds[v]
        shape = da.isel(chain=0, draw=0).shape
        for i in range(int(np.prod(shape))):
            idx = np.unravel_index(i, shape)
            sel = dict(zip(da.isel(chain=0, draw=0).dims, idx, strict=True))
            out[_element_name(da.isel(chain=0, draw=0), i)] = {
                "mean": float(mean[v].isel(sel)),
                "median": float(median[v].isel(sel)),
                "sd": float(sd[v].isel(sel)),
                "q025": float(q[v].sel(quantile=0.025).isel(sel)),
                "q975": float(q[v].sel(quantile=0.975).isel(sel)),
                "mcse_mean": float(mcse[v].isel(sel)),
            }
    return out
