"""Unit plausibility: is a recorded level of the right order of magnitude for its outcome.

A number recorded with the wrong unit (a glucose in ng/dL instead of mg/dL, a testosterone in
ng/dL instead of ng/mL) converts without complaint and silently corrupts an effect size. Each
outcome therefore carries the adult reference interval of a clinical laboratory or a clinical
reference text, in the outcome's harmonised unit (:data:`nutrimeta.schema.OUTCOMES`), with its
source. A trial group's mean or median lies near that interval even in disease (a deficient,
diabetic, hypogonadal or Hashimoto population), so:

* a level outside the interval widened :data:`WARN_FACTOR`-fold on each side is *mildly
  implausible* (a warning: check the unit and the digits);
* a level outside the interval widened :data:`ERROR_FACTOR`-fold is off by orders of magnitude
  (an error: almost certainly a unit error such as mg vs ug vs ng);
* a change or a between-arm difference larger in magnitude than :data:`ERROR_FACTOR` times the
  upper limit is an error (no change can exceed the level it changes by that much).

Outcomes whose reference interval starts at 0 (antibodies) are checked only from above; for
autoantibodies, which reach many times the interval in the Hashimoto populations the selenium
trials enrol, the checks from above widen a cited disease level instead of the interval.
Outcomes without an entry (the T3:T4 ratio, whose unit depends on which hormones and units were
divided) are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Widening of the reference interval beyond which a group level is a warning.
WARN_FACTOR = 10.0
#: Widening of the reference interval beyond which a group level (or a change) is an error.
ERROR_FACTOR = 1000.0


@dataclass(frozen=True)
class ReferenceInterval:
    """Adult reference interval of an outcome, in the outcome's harmonised unit."""

    low: float
    high: float
    unit: str
    source: str
    #: For markers that rise far above the interval in the disease the trials enrol
    #: (autoantibodies in Hashimoto's thyroiditis): the level a trial group can plausibly
    #: reach, used instead of ``high`` for the checks from above.
    disease_high: float | None = None
    disease_source: str = ""

    @property
    def ceiling(self) -> float:
        """The upper level the plausibility checks widen."""
        return self.high if self.disease_high is None else self.disease_high


REFERENCE_INTERVALS: dict[str, ReferenceInterval] = {
    "total_testosterone": ReferenceInterval(
        0.17, 37.48, "nmol/L", "Davis's Lab & Diagnostic Tests, 'Testosterone, Total and Free' "
        "(HPLC/tandem MS): women 0.17-2.08 (older adult female lowest), men 18-39 y "
        "10.41-37.48 nmol/L"),
    "free_testosterone": ReferenceInterval(
        0.0, 846.68, "pmol/L", "Davis's Lab & Diagnostic Tests, 'Testosterone, Total and Free': "
        "women < 34.7, adult men 173.5-846.68 pmol/L"),
    "tpo_ab": ReferenceInterval(
        0.0, 35.0, "IU/mL", "Medscape, 'Antithyroid Antibody' reference range: TPOAb < 35 IU/mL",
        1300.0, "Dr. Oracle clinical summary 'Thyroid peroxidase antibody normal range': above "
        "1300 IU/mL is the 'highly elevated' band of Hashimoto's thyroiditis (up to 90,000 "
        "IU/mL reported untreated)"),
    "tg_ab": ReferenceInterval(
        0.0, 20.0, "IU/mL", "Medscape, 'Antithyroid Antibody' reference range: TgAb < 20 IU/mL",
        1300.0, "no separate disease band found for TgAb; the TPO-Ab band of Hashimoto's "
        "thyroiditis is used"),
    "tsh": ReferenceInterval(
        0.38, 5.33, "mIU/L", "North Bristol NHS Trust, Severn Pathology, 'Thyroid Function "
        "Tests' (from 14/11/22): TSH 0.38-5.33 mU/L"),
    "ft4": ReferenceInterval(
        7.9, 14.4, "pmol/L", "North Bristol NHS Trust, Severn Pathology, 'Thyroid Function "
        "Tests': free T4 7.9-14.4 pmol/L"),
    "ft3": ReferenceInterval(
        3.8, 6.0, "pmol/L", "North Bristol NHS Trust, Severn Pathology, 'Thyroid Function "
        "Tests': free T3 3.8-6.0 pmol/L"),
    "tt4": ReferenceInterval(
        59.2, 154.4, "nmol/L", "EndocrineWeb, 'Thyroid Function Tests', normal laboratory "
        "values: serum thyroxine 4.6-12 ug/dL (x 12.87 = 59.2-154.4 nmol/L)"),
    "tt3": ReferenceInterval(
        0.62, 2.79, "nmol/L", "Doctors Lounge, 'Thyroid function tests': T3, adults 20-50 y, "
        "70-204 ng/dL (0.62-2.79 nmol/L)"),
    "homa_ir": ReferenceInterval(
        0.39, 2.86, "index", "Schrank et al. 2024, Arch Endocrinol Metab 68:e230483 "
        "(doi 10.20945/2359-4292-2023-0483): HOMA-IR 0.39-2.86"),
    "fasting_insulin": ReferenceInterval(
        15.2, 79.2, "pmol/L", "Schrank et al. 2024, Arch Endocrinol Metab 68:e230483: fasting "
        "insulin 2.52-13.14 uU/mL (15.2-79.2 pmol/L)"),
    "fasting_glucose": ReferenceInterval(
        3.9, 6.1, "mmol/L", "MSD Manual, 'Blood tests' table: glucose, fasting 70-110 mg/dL "
        "(3.9-6.1 mmol/L)"),
    "hba1c": ReferenceInterval(
        4.0, 5.6, "%", "Medscape Reference, 'Hemoglobin A1c' reference range: 4.0-5.6 % "
        "(20-38 mmol/mol)"),
    "serum_zinc": ReferenceInterval(
        9.0, 20.0, "umol/L", "RCPA Manual, 'Zinc - plasma or serum': 12-20 umol/L; Waikato DHB "
        "laboratory test guide: 9.0-17.0 umol/L (non-fasting)"),
    "serum_selenium": ReferenceInterval(
        0.6, 1.5, "umol/L", "Royal Liverpool University Hospital laboratory, 'Selenium, serum': "
        "0.6-1.5 umol/L"),
    "serum_magnesium": ReferenceInterval(
        0.70, 1.10, "mmol/L", "Alfred Pathology handbook, 'Magnesium': 0.70-1.10 mmol/L "
        "(RCPA/AACB harmonised reference interval, 2015)"),
}


@dataclass(frozen=True)
class Verdict:
    """Outcome of a plausibility check: ``severity`` is None when the value is plausible."""

    severity: str | None
    message: str = ""


def check_level(outcome: str, value: float) -> Verdict:
    """Judge a group level (mean, median, geometric mean) already in the harmonised unit."""
    ri = REFERENCE_INTERVALS.get(outcome)
    if ri is None:
        return Verdict(None)
    shown = f"{value:.4g} {ri.unit} (reference interval {ri.low:g}-{ri.high:g} {ri.unit})"
    for factor, severity, what in ((ERROR_FACTOR, "error", "orders of magnitude outside"),
                                   (WARN_FACTOR, "warning", "more than 10-fold outside")):
        too_low = ri.low > 0 and value < ri.low / factor
        too_high = value > ri.ceiling * factor
        if too_low or too_high:
            return Verdict(severity, f"converted level {shown} is {what} the plausible range "
                           "for this outcome: check the unit (mg vs ug vs ng, dL vs L) and "
                           "the digits")
    return Verdict(None)


def check_change(outcome: str, value: float) -> Verdict:
    """Judge a change or a difference already in the harmonised unit (errors only)."""
    ri = REFERENCE_INTERVALS.get(outcome)
    if ri is None or abs(value) <= ri.ceiling * ERROR_FACTOR:
        return Verdict(None)
    return Verdict("error", f"converted change {value:.4g} {ri.unit} is more than "
                   f"{ERROR_FACTOR:g} times the upper plausible level {ri.ceiling:g} {ri.unit}: "
                   "check the unit and the digits")
