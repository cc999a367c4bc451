"""Small published example data sets used by tests and benchmarks.

Two classic meta-analysis examples with well-documented reference analyses:

* the eight schools SAT-coaching experiments (Rubin 1981), the standard example for the
  normal-normal hierarchical model (Gelman et al., *Bayesian Data Analysis*, section 5.5;
  ``Rubin1981`` in the R package bayesmeta);
* the BCG vaccine trials (Colditz et al. 1994), ``dat.bcg`` in the R packages metafor / metadat,
  used throughout Viechtbauer (2010) to document random-effects meta-analysis and
  meta-regression.

References
----------
Rubin, D. B. (1981). Estimation in parallel randomized experiments. *Journal of Educational
Statistics*, 6(4), 377-401.

Colditz, G. A., Brewer, T. F., Berkey, C. S., et al. (1994). Efficacy of BCG vaccine in the
prevention of tuberculosis: meta-analysis of the published literature. *JAMA*, 271(9), 698-702.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BCG_TRIALS",
    "EIGHT_SCHOOLS",
    "BCGTrial",
    "bcg_data",
    "eight_schools",
    "escalc_rr",
]

#: Eight schools (Rubin 1981, Table 2; Gelman et al., BDA3, Table 5.2): estimated coaching
#: effect on SAT-V scores (``y``) and its standard error (``sigma``) for schools A-H.
EIGHT_SCHOOLS: dict[str, tuple] = {
    "school": ("A", "B", "C", "D", "E", "F", "G", "H"),
    "y": (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0),
    "sigma": (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0),
}


def eight_schools() -> pd.DataFrame:
    """Return the eight schools data as a data frame with columns ``school, y, sigma``."""
    return pd.DataFrame(EIGHT_SCHOOLS)


@dataclass(frozen=True)
class BCGTrial:
    """One BCG vaccine trial: 2x2 counts, absolute latitude and publication year.

    ``tpos``/``tneg``: vaccinated with / without tuberculosis; ``cpos``/``cneg``: unvaccinated
    with / without tuberculosis; ``ablat``: absolute latitude of the study location (degrees).
    """

    trial: int
    author: str
    year: int
    tpos: int
    tneg: int
    cpos: int
    cneg: int
    ablat: int
    alloc: str


# Values as printed by ``knitr::kable(dat.bcg)`` (metafor) in a public R-markdown course handout
# on meta-analysis, found by full-text search of public GitHub files. Cross-checked against the
# ``print(dat.bcg)`` output in the metafor tutorial at
# https://shixiangwang.github.io/home/cn/post/2019-11-20-use-metafor (trials 1-10, with
# ablat) and a public test fixture listing the 2x2 counts of trials 1-11; all agree. The
# derived log risk ratios reproduce metafor's published fits (see tests/test_frequentist.py).
BCG_TRIALS: tuple[BCGTrial, ...] = (
    BCGTrial(1, "Aronson", 1948, 4, 119, 11, 128, 44, "random"),
    BCGTrial(2, "Ferguson & Simes", 1949, 6, 300, 29, 274, 55, "random"),
    BCGTrial(3, "Rosenthal et al", 1960, 3, 228, 11, 209, 42, "random"),
    BCGTrial(4, "Hart & Sutherland", 1977, 62, 13536, 248, 12619, 52, "random"),
    BCGTrial(5, "Frimodt-Moller et al", 1973, 33, 5036, 47, 5761, 13, "alternate"),
    BCGTrial(6, "Stein & Aronson", 1953, 180, 1361, 372, 1079, 44, "alternate"),
    BCGTrial(7, "Vandiviere et al", 1973, 8, 2537, 10, 619, 19, "random"),
    BCGTrial(8, "TPT Madras", 1980, 505, 87886, 499, 87892, 13, "random"),
    BCGTrial(9, "Coetzee & Berjak", 1968, 29, 7470, 45, 7232, 27, "random"),
    BCGTrial(10, "Rosenthal et al", 1961, 17, 1699, 65, 1600, 42, "systematic"),
    BCGTrial(11, "Comstock et al", 1974, 186, 50448, 141, 27197, 18, "systematic"),
    BCGTrial(12, "Comstock & Webster", 1969, 5, 2493, 3, 2338, 33, "systematic"),
    BCGTrial(13, "Comstock et al", 1976, 27, 16886, 29, 17825, 33, "systematic"),
)


def escalc_rr(
    tpos: np.ndarray | list[float],
    tneg: np.ndarray | list[float],
    cpos: np.ndarray | list[float],
    cneg: np.ndarray | list[float],
    add: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Log risk ratios and their sampling variances from 2x2 tables.

    Mirrors ``metafor::escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg)`` with its
    default zero-cell handling (``add=1/2, to="only0"``: ``add`` is added to all four cells of
    a table that has a zero cell).

    Returns
    -------
    yi, vi
        ``log((a/n1)/(c/n2))`` and ``1/a - 1/n1 + 1/c - 1/n2`` with ``n1 = a + b``,
        ``n2 = c + d`` (large-sample variance of a log risk ratio).
    """
    a, b, c, d = (np.asarray(x, dtype=float) for x in (tpos, tneg, cpos, cneg))
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    a, b, c, d = (np.where(zero, x + add, x) for x in (a, b, c, d))
    n1 = a + b
    n2 = c + d
    yi = np.log(a / n1) - np.log(c / n2)
    vi = 1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2
    return yi, vi


def bcg_data() -> pd.DataFrame:
    """Return the BCG trials with log risk ratios ``yi``, variances ``vi`` and ``sei`` added."""
    df = pd.DataFrame([asdict(t) for t in BCG_TRIALS])
    yi, vi = escalc_rr(df["tpos"], df["tneg"], df["cpos"], df["cneg"])
    df["yi"] = yi
    df["vi"] = vi
    df["sei"] = np.sqrt(vi)
    return df
