"""Estimability of moderator quantities, decided from information rather than row counts.

A moderator quantity (the deficiency slope, the effect in a deficient or a replete
population, their difference) is *estimable* when the data, not the prior, determine it. The
declared rule (:class:`EstimabilityRule`) asks two things:

- information: the posterior SD has contracted below a declared fraction of the prior SD
  (``posterior_sd / prior_sd < max_contraction``);
- support: at least ``min_trials_each_side`` trials with status information (a measured
  baseline level or a status category) lie on each side of the deficiency cut-off, so the
  comparison is not an extrapolation.

A quantity failing either is reported with the reason in plain words and with its prior
against its posterior, never as a finding. One rule serves headlines, claims, figures and
the summary-of-findings table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MODERATOR_QUANTITIES: tuple[str, ...] = (
    "slope", "effect_deficient", "effect_replete", "deficient_minus_replete",
)
#: status categories that place a trial below / above the deficiency cut-off
BELOW_CATEGORIES: frozenset[str] = frozenset({"deficient"})
ABOVE_CATEGORIES: frozenset[str] = frozenset({"replete"})


@dataclass(frozen=True)
class EstimabilityRule:
    """The declared estimability rule (``[moderator.estimability]`` in the analysis spec).

    Attributes
    ----------
    max_contraction
        A quantity is informed by the data when ``posterior_sd / prior_sd`` is below this.
    min_trials_each_side
        Trials with status information required below and above the cut-off.
    """

    #: Default 0.5: the posterior SD must be at most half the prior SD (the data carry at least
    #: three times the prior's information) before a moderator quantity is shown as a number;
    #: 0.8 would let a slope informed by one trial above the cut-off pass (shipped data, 0.76).
    max_contraction: float = 0.5
    min_trials_each_side: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.max_contraction <= 1.0:
            raise ValueError(f"max_contraction must lie in (0, 1], got {self.max_contraction}")
        if self.min_trials_each_side < 0:
            raise ValueError("min_trials_each_side must be >= 0, "
                             f"got {self.min_trials_each_side}")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> EstimabilityRule:
        """Rule from a spec table; unknown keys are an error naming them."""
        unknown = set(table) - {"max_contraction", "min_trials_each_side"}
        if unknown:
            raise ValueError(f"[moderator.estimability]: unknown keys {sorted(unknown)}")
        default = cls()
        return cls(
            max_contraction=float(table.get("max_contraction", default.max_contraction)),
            min_trials_each_side=int(table.get("min_trials_each_side",
                                               default.min_trials_each_side)),
        )


@dataclass(frozen=True)
class InformingTrials:
    """Trials that carry information on baseline status, by kind and by side of the cut-off.

    A trial with a measured level counts below when its level is under the cut-off and above
    otherwise; a trial with only a category counts below if ``deficient`` and above if
    ``replete`` (``marginal`` and ``unknown`` place it on neither side).
    """

    n_measured: int = 0
    n_category_only: int = 0
    n_below: int = 0
    n_above: int = 0

    @classmethod
    def from_trials(
        cls,
        levels: Sequence[float | None],
        categories: Sequence[str | None],
        cutoff: float,
    ) -> InformingTrials:
        """Count trials from their baseline levels (``None``/NaN when not measured) and
        categories (``None`` or ``"unknown"`` when not reported), one entry per trial."""
        if len(levels) != len(categories):
            raise ValueError(f"levels ({len(levels)}) and categories ({len(categories)}) "
                             "must have one entry per trial")
        n_measured = n_category = n_below = n_above = 0
        for level, cat in zip(levels, categories, strict=True):
            if level is not None and not math.isnan(float(level)):
                n_measured += 1
                if float(level) < cutoff:
                    n_below += 1
                else:
                    n_above += 1
            elif cat is not None and cat != "unknown":
                n_category += 1
                n_below += cat in BELOW_CATEGORIES
                n_above += cat in ABOVE_CATEGORIES
        return cls(n_measured, n_category, n_below, n_above)


@dataclass(frozen=True)
class Estimability:
    """Whether one moderator quantity is estimable, why, and the numbers behind it."""

    estimable: bool
    reason: str
    prior_sd: float
    posterior_sd: float
    contraction: float
    n_measured: int
    n_category_only: int
    n_below: int
    n_above: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the ``moderator`` object of the results bundle)."""
        return asdict(self)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def assess(
    prior_sd: float,
    posterior_sd: float,
    trials: InformingTrials,
    rule: EstimabilityRule | None = None,
) -> Estimability:
    """Apply the rule to one quantity given its prior and posterior SD and informing trials."""
    rule = rule or EstimabilityRule()
    if not (prior_sd > 0 and math.isfinite(prior_sd)):
        raise ValueError(f"prior_sd must be positive and finite, got {prior_sd}")
    if not (posterior_sd >= 0 and math.isfinite(posterior_sd)):
        raise ValueError(f"posterior_sd must be non-negative and finite, got {posterior_sd}")
    contraction = posterior_sd / prior_sd
    problems = []
    need = rule.min_trials_each_side
    for side, n in (("below", trials.n_below), ("above", trials.n_above)):
        if n < need:
            problems.append(f"no trial {side} the cut-off" if n == 0 else
                            f"only {n} trial{'s' if n > 1 else ''} {side} the cut-off "
                            f"(the rule asks for {need})")
    if contraction >= rule.max_contraction:
        problems.append(f"posterior SD is {_pct(contraction)} of the prior SD: "
                        "the data barely inform it")
    if problems:
        reason = "; ".join(problems)
    else:
        reason = (f"posterior SD is {_pct(contraction)} of the prior SD; "
                  f"{trials.n_below} trial{'s' * (trials.n_below != 1)} below and "
                  f"{trials.n_above} above the cut-off")
    return Estimability(
        estimable=not problems, reason=reason, prior_sd=float(prior_sd),
        posterior_sd=float(posterior_sd), contraction=float(contraction),
        n_measured=trials.n_measured, n_category_only=trials.n_category_only,
        n_below=trials.n_below, n_above=trials.n_above,
    )


def assess_draws(
    prior_draws: np.ndarray | Sequence[float],
    posterior_draws: np.ndarray | Sequence[float],
    trials: InformingTrials,
    rule: EstimabilityRule | None = None,
) -> Estimability:
    """:func:`assess` with the SDs taken from prior and posterior draws of the quantity."""
    prior = np.asarray(prior_draws, dtype=float).ravel()
    post = np.asarray(posterior_draws, dtype=float).ravel()
    if prior.size < 2 or post.size < 2:
        raise ValueError("need at least two prior and two posterior draws")
    return assess(float(prior.std(ddof=1)), float(post.std(ddof=1)), trials, rule)


def assess_quantities(
    prior_sds: Mapping[str, float],
    posterior_sds: Mapping[str, float],
    trials: InformingTrials,
    rule: EstimabilityRule | None = None,
) -> dict[str, Estimability]:
    """The rule applied to every quantity named in both mappings (same trials for all)."""
    missing = set(prior_sds) ^ set(posterior_sds)
    if missing:
        raise ValueError(f"prior and posterior SDs name different quantities: {sorted(missing)}")
    return {q: assess(prior_sds[q], posterior_sds[q], trials, rule) for q in prior_sds}


# ----------------------------------------------------------------- prior SDs of derived

def continuous_moderator_prior_sds(
    mu_sd: float, slope_sd: float, x_deficient: float, x_replete: float
) -> dict[str, float]:
    """Prior SDs of the moderator quantities of ``theta(x) = mu + slope * x``.

    With independent ``mu ~ N(., mu_sd)`` and ``slope ~ N(0, slope_sd)``, the effect at a
    level ``x`` has SD ``sqrt(mu_sd^2 + x^2 slope_sd^2)`` and the difference between the
    reference levels has SD ``|x_deficient - x_replete| * slope_sd``.
    """
    return {
        "slope": float(slope_sd),
        "effect_deficient": effect_at_level_prior_sd(mu_sd, slope_sd, x_deficient),
        "effect_replete": effect_at_level_prior_sd(mu_sd, slope_sd, x_replete),
        "deficient_minus_replete": abs(x_deficient - x_replete) * float(slope_sd),
    }


def effect_at_level_prior_sd(mu_sd: float, slope_sd: float, x: float) -> float:
    """Prior SD of ``mu + slope * x`` with independent normal ``mu`` and ``slope``."""
    return math.sqrt(mu_sd**2 + (x * slope_sd) ** 2)


def category_moderator_prior_sds(mu_sd: float, category_sd: float) -> dict[str, float]:
    """Prior SDs of the category model ``effect_c = mu + sigma_c z_c``.

    ``sigma_c = category_sd * HalfNormal(1)`` has ``E[sigma_c^2] = category_sd^2``, so an
    effect in one category has SD ``sqrt(mu_sd^2 + category_sd^2)`` and the difference of
    two categories ``sigma_c (z_1 - z_2)`` has SD ``sqrt(2) * category_sd``.
    """
    return {
        "effect_deficient": math.sqrt(mu_sd**2 + category_sd**2),
        "effect_replete": math.sqrt(mu_sd**2 + category_sd**2),
        "deficient_minus_replete": math.sqrt(2.0) * float(category_sd),
    }


def prior_sds_by_simulation(
    model: Any, var_names: Sequence[str], draws: int = 4000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Prior SDs of any model variables (shape of the variable) from prior draws.

    For derived quantities without a closed form; the Monte Carlo relative error of an SD
    from ``draws`` normal draws is about ``1 / sqrt(2 draws)`` (1.1% at 4,000).
    """
    import pymc as pm

    with model:
        prior = pm.sample_prior_predictive(draws=draws, var_names=list(var_names),
                                           random_seed=seed)
    ds = prior["prior"].to_dataset() if hasattr(prior, "children") else prior.prior
    return {n: ds[n].std(dim=("chain", "draw"), ddof=1).values for n in var_names}
