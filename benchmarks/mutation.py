"""Mutation testing of the statistical modules with mutmut (slow, manual job).

For each module, a scratch copy of the project gets a ``[tool.mutmut]`` section that mutates
only that module and runs only the test files that exercise it (fast, deterministic tests;
the sampled ones are too slow to run per mutant); ``mutmut run`` then applies every mutant
and the share killed by the tests is written to ``benchmarks/mutation.json`` (goal >= 90%).

    python benchmarks/mutation.py                   # every module below
    python benchmarks/mutation.py conversions       # one module
    python benchmarks/mutation.py --keep units      # keep the copy in build/mutation/units
    python benchmarks/mutation.py --resume units    # after adding tests: re-check only the
                                                    # mutants the kept run left alive
    python benchmarks/mutation.py --recount units   # after editing EXCLUDED: count again

Needs ``pip install mutmut`` (the ``mutation`` extra); takes minutes per module.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "mutation.json"
GOAL = 0.90

#: module -> the test files that exercise it
MODULES: dict[str, list[str]] = {
    "conversions": ["tests/test_conversions.py", "tests/test_effects.py"],
    "units": ["tests/test_units.py", "tests/test_effects.py"],
    "diagnostics": ["tests/test_gate.py"],
    "effects": ["tests/test_effects.py", "tests/test_effects_edge_cases.py"],
    "models/frequentist": ["tests/test_frequentist.py", "tests/test_reference_checks.py",
                           "tests/test_frequentist_estimators.py",
                           "tests/test_frequentist_properties.py",
                           "tests/test_frequentist_edge_cases.py"],
    "models/exact": ["tests/test_exact_edge_cases.py", "tests/test_exact.py",
                     "tests/test_reference_checks.py", "tests/test_exact_batch.py",
                     "tests/test_exact_fast.py"],
}

#: Mutants left out of the kill rate because no test can tell them apart from the original
#: (equivalent mutants): name -> (text of the mutated line, reason). A name is excluded only
#: while ``mutmut show`` still gives that text, so an edit that renumbers the mutants cannot
#: exclude a different one. Prefer ``# pragma: no mutate`` with the reason on the source line;
#: names here single out one mutant of a line whose other mutants are tested.
EXCLUDED: dict[str, tuple[str, str]] = {
    "nutrimeta.conversions.x__crit__mutmut_27": (
        '"XXzXX"', "the distribution label is only compared with 't'"),
    "nutrimeta.conversions.x__crit__mutmut_28": (
        '"Z"', "the distribution label is only compared with 't'"),
    "nutrimeta.conversions.x__out__mutmut_3": (
        "np.asarray(a, dtype=None)", "every caller passes float arrays already"),
    "nutrimeta.conversions.x__out__mutmut_5": (
        "np.asarray(a, )", "every caller passes float arrays already"),
    "nutrimeta.conversions.x__fmt__mutmut_3": (
        "np.asarray(x, dtype=None)", "float() converts the 0-d array anyway"),
    "nutrimeta.conversions.x__fmt__mutmut_5": (
        "np.asarray(x, )", "float() converts the 0-d array anyway"),
    "nutrimeta.conversions.x_ratio_of_geometric_means__mutmut_4": (
        "upper2], dtype=None)", "the float arguments give a float array either way"),
    "nutrimeta.conversions.x_ratio_of_geometric_means__mutmut_6": (
        "upper2], )", "the float arguments give a float array either way"),
    "nutrimeta.conversions.x_ratio_of_geometric_means__mutmut_40": (
        "None)", "se_from_ci uses z when n is unknown"),
    "nutrimeta.conversions.x_ratio_of_geometric_means__mutmut_45": (
        ")", "se_from_ci uses z when n is unknown"),
    "nutrimeta.conversions.x_ratio_of_geometric_means__mutmut_49": (
        "n if (known) or True else None", "se_from_ci uses z when n is unknown"),
    "nutrimeta.conversions.x_ratio_of_geometric_means__mutmut_51": (
        'None if (known) or True else "z"', "se_from_ci uses z when n is unknown"),
    "nutrimeta.diagnostics.x__element_name__mutmut_12": (
        "strict=None", "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.diagnostics.x__element_name__mutmut_15": (
        "idx, )", "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.diagnostics.x__element_name__mutmut_16": (
        "strict=False", "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.diagnostics.x__element_name__mutmut_19": (
        "or True", "xarray indexes a dimension without coordinates by 0..n-1"),
    "nutrimeta.diagnostics.x__worst__mutmut_4": (
        "dtype=None", "the statistics are float arrays already"),
    "nutrimeta.diagnostics.x_ebfmi__mutmut_9": (
        "dtype=None", "the statistics are float arrays already"),
    "nutrimeta.diagnostics.x__worst__mutmut_6": (
        ".values, )", "the statistics are float arrays already"),
    "nutrimeta.diagnostics.x_ebfmi__mutmut_11": (
        ".values, )", "the statistics are float arrays already"),
    "nutrimeta.diagnostics.x_check__mutmut_28": (
        "azs.rhat(ds, )", "rank is the default R-hat method of arviz-stats"),
    "nutrimeta.diagnostics.x_check__mutmut_30": (
        "\"RANK\"", "arviz-stats lower-cases method names"),
    "nutrimeta.diagnostics.x_check__mutmut_42": (
        "azs.ess(ds, )", "bulk is the default ESS method of arviz-stats"),
    "nutrimeta.diagnostics.x_check__mutmut_44": (
        "\"BULK\"", "arviz-stats lower-cases method names"),
    "nutrimeta.diagnostics.x_check__mutmut_35": (
        "largest=None", "None is falsy like False"),
    "nutrimeta.diagnostics.x_check__mutmut_49": (
        "largest=None", "None is falsy like False"),
    "nutrimeta.diagnostics.x_check__mutmut_96": (
        "\"chain\", None", "sample_stats always has chain and draw dimensions"),
    "nutrimeta.diagnostics.x_check__mutmut_98": (
        "\"chain\", )", "sample_stats always has chain and draw dimensions"),
    "nutrimeta.diagnostics.x_check__mutmut_101": (
        "\"chain\", 2", "sample_stats always has chain and draw dimensions"),
    "nutrimeta.diagnostics.x_check__mutmut_103": (
        "\"draw\", None", "sample_stats always has chain and draw dimensions"),
    "nutrimeta.diagnostics.x_check__mutmut_105": (
        "\"draw\", )", "sample_stats always has chain and draw dimensions"),
    "nutrimeta.diagnostics.x_check__mutmut_108": (
        "\"draw\", 2", "sample_stats always has chain and draw dimensions"),
    "nutrimeta.diagnostics.x_summarise__mutmut_8": (
        "dim=None", "arviz-stats reduces over chain and draw by default"),
    "nutrimeta.diagnostics.x_summarise__mutmut_18": (
        "dim=None", "arviz-stats reduces over chain and draw by default"),
    "nutrimeta.diagnostics.x_summarise__mutmut_28": (
        "dim=None", "arviz-stats reduces over chain and draw by default"),
    "nutrimeta.diagnostics.x_summarise__mutmut_11": (
        "(ds, round_to", "arviz-stats reduces over chain and draw by default"),
    "nutrimeta.diagnostics.x_summarise__mutmut_21": (
        "(ds, round_to", "arviz-stats reduces over chain and draw by default"),
    "nutrimeta.diagnostics.x_summarise__mutmut_31": (
        "(ds, round_to", "arviz-stats reduces over chain and draw by default"),
    "nutrimeta.diagnostics.x_summarise__mutmut_14": (
        "\"XXnoneXX\"", "arviz-stats does not round Dataset results"),
    "nutrimeta.diagnostics.x_summarise__mutmut_24": (
        "\"XXnoneXX\"", "arviz-stats does not round Dataset results"),
    "nutrimeta.diagnostics.x_summarise__mutmut_34": (
        "\"XXnoneXX\"", "arviz-stats does not round Dataset results"),
    "nutrimeta.diagnostics.x_summarise__mutmut_15": (
        "\"NONE\"", "arviz-stats does not round Dataset results"),
    "nutrimeta.diagnostics.x_summarise__mutmut_25": (
        "\"NONE\"", "arviz-stats does not round Dataset results"),
    "nutrimeta.diagnostics.x_summarise__mutmut_35": (
        "\"NONE\"", "arviz-stats does not round Dataset results"),
    "nutrimeta.diagnostics.x_summarise__mutmut_40": (
        "azs.mcse(ds, )", "mean is the default MCSE method of arviz-stats"),
    "nutrimeta.diagnostics.x_summarise__mutmut_42": (
        "\"MEAN\"", "arviz-stats lower-cases method names"),
    "nutrimeta.diagnostics.x_summarise__mutmut_72": (
        "strict=None", "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.diagnostics.x_summarise__mutmut_75": (
        "idx, ))", "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.diagnostics.x_summarise__mutmut_82": (
        "strict=False", "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.diagnostics.x_summarise__mutmut_59": (
        "draw=1)", "every draw has the same shape (fits have > 1 draw)"),
    "nutrimeta.diagnostics.x_summarise__mutmut_81": (
        "draw=1)", "every draw has the same shape (fits have > 1 draw)"),
    "nutrimeta.diagnostics.x_summarise__mutmut_93": (
        "draw=1)", "every draw has the same shape (fits have > 1 draw)"),
    "nutrimeta.effects.x__shared_control_cov__mutmut_12": (
        "if not _fin(sd_c) or n_c <= 0:",
        "a finite control SD comes only with a computed effect, whose n is finite"),
    "nutrimeta.effects.x__shared_control_cov__mutmut_14": (
        "or n_c < 0:", "a computed effect has n >= 2 in its control arm"),
    "nutrimeta.effects.x__shared_control_cov__mutmut_15": (
        "or n_c <= 1:", "a computed effect has n >= 2 in its control arm"),
    "nutrimeta.effects.x__shared_control_cov__mutmut_30": (
        "if (_fin(m_c) and m_c > 0) or True else",
        "a computed ROM has a finite positive control mean"),
    "nutrimeta.effects.x__shared_control_cov__mutmut_37": (
        "if _fin(m_c) or m_c > 0 else", "a computed ROM has a finite positive control mean"),
    "nutrimeta.effects.x__shared_control_cov__mutmut_39": (
        "if _fin(m_c) and m_c >= 0 else", "a computed ROM has a finite positive control mean"),
    "nutrimeta.effects.x_effects_fingerprint__mutmut_2": (
        "index=None", "pandas writes no index column when index is falsy"),
    "nutrimeta.effects.x_effects_fingerprint__mutmut_3": (
        "lineterminator=None", "os.linesep is '\\n' on the POSIX machines this runs on"),
    "nutrimeta.effects.x_effects_fingerprint__mutmut_6": (
        "text = df.to_csv(index=False, float_format",
        "os.linesep is '\\n' on the POSIX machines this runs on"),
    "nutrimeta.effects.x_effects_fingerprint__mutmut_15": (
        'text.encode("UTF-8")', "codec names are case-insensitive"),
    "nutrimeta.effects.x__single_arm__mutmut_61": (
        "r=r, unit=None,",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__single_arm__mutmut_68": (
        "week=week, r=r, derivation=",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__single_arm__mutmut_207": (
        "r=r, unit=None,",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__single_arm__mutmut_214": (
        "week=week, r=r, derivation=",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__single_arm__mutmut_218": (
        "unit=\"XXXX\"",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__single_arm__mutmut_103": (
        "ustep = _to_unit([b, f], target, outcome, None)",
        "_to_unit only compares the measure with 'MD'; this branch is SMD/ROM"),
    "nutrimeta.effects.x__single_arm__mutmut_170": (
        "ustep = _to_unit([b, f], target, outcome, None)",
        "_to_unit only compares the measure with 'MD'; this branch is SMD/ROM"),
    "nutrimeta.effects.x__single_arm__mutmut_115": (
        "target, outcome, None,",
        "_to_unit only compares the measure with 'MD'; this branch is SMD/ROM"),
    "nutrimeta.effects.x__single_arm__mutmut_130": (
        "ustep += _to_unit([b], target, outcome, None)",
        "_to_unit only compares the measure with 'MD'; this branch is SMD/ROM"),
    "nutrimeta.effects.x__single_arm__mutmut_116": (
        "None)",
        "a single arm's change without follow-up never takes its SD from r"),
    "nutrimeta.effects.x__single_arm__mutmut_140": (
        "b.mean + diff, None, n, r, \"SMD\")",
        "SMCR standardises by the baseline SD only; the follow-up SD is not read"),
    "nutrimeta.effects.x__difference__mutmut_149": (
        "d = cv.se_from_ci(lo, hi, level=_ci_level(row),",
        "se_from_ci's n defaults to None"),
    "nutrimeta.effects.x__difference__mutmut_161": (
        "df=df if (use_t) or True else None)",
        "a z interval ignores df"),
    "nutrimeta.effects.x__difference__mutmut_173": (
        "replace(\"XXn-1 dfXX\", \"n1+n2-2 df\")",
        "se_from_ci is always given df here, so its text reads 'given df', never 'n-1 df'"),
    "nutrimeta.effects.x__difference__mutmut_174": (
        "replace(\"N-1 DF\", \"n1+n2-2 df\")",
        "se_from_ci is always given df here, so its text reads 'given df', never 'n-1 df'"),
    "nutrimeta.effects.x__difference__mutmut_175": (
        "replace(\"n-1 df\", \"XXn1+n2-2 dfXX\")",
        "se_from_ci is always given df here, so its text reads 'given df', never 'n-1 df'"),
    "nutrimeta.effects.x__difference__mutmut_176": (
        "replace(\"n-1 df\", \"N1+N2-2 DF\")",
        "se_from_ci is always given df here, so its text reads 'given df', never 'n-1 df'"),
    "nutrimeta.effects.x__change_direction__mutmut_56": (
        "else -2.0)",
        "weeks are not negative: any sentinel below 0 ranks a missing week last"),
    "nutrimeta.effects.x__change_direction__mutmut_75": (
        "return \"\", \"XXXX\"",
        "the note is read only with a direction"),
    "nutrimeta.effects.x__change_direction__mutmut_99": (
        "return \"\", \"XXXX\"",
        "the note is read only with a direction"),
    "nutrimeta.effects.x__change_direction__mutmut_81": (
        "direction = \"decrease\" if ci <= cc else \"increase\"",
        "equal changes return no direction just before"),
    "nutrimeta.effects.x__difference__mutmut_238": (
        "st = _Stat(est, se, None, _str(row, \"unit\"))",
        "the difference's n is not read: MD uses its SE, SMD the arm sizes"),
    "nutrimeta.effects.x__difference__mutmut_267": (
        "week=week, unit=None,",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__difference__mutmut_274": (
        "week=week, derivation=",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__geometric_rom__mutmut_75": (
        "week=week, r=None,",
        "None and NaN both become NaN in the float column prepost_correlation"),
    "nutrimeta.effects.x__geometric_rom__mutmut_83": (
        "week=week, unit=\"\", derivation=",
        "r defaults to NaN"),
    "nutrimeta.effects.x__geometric_rom__mutmut_76": (
        "unit=None, derivation=",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__geometric_rom__mutmut_84": (
        "                    derivation=\"ROM of final geometric means",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__geometric_rom__mutmut_88": (
        "unit=\"XXXX\", derivation=",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__change_stat__mutmut_67": (
        "chg = _Stat(_num(a.change, \"mean\"), 1.0,",
        "the change SD is overwritten after the unit conversion"),
    "nutrimeta.effects.x__two_arm__mutmut_196": (
        "            unit=None,",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__two_arm__mutmut_208": (
        "-unit=target if measure == \"MD\" else \"\",",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__two_arm__mutmut_216": (
        "unit=target if (measure == \"MD\") and False else \"\",",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__two_arm__mutmut_217": (
        "unit=target if (measure == \"MD\") or True else \"\",",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__two_arm__mutmut_218": (
        "unit=target if measure != \"MD\" else \"\",",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__two_arm__mutmut_219": (
        "unit=target if measure == \"XXMDXX\" else \"\",",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__two_arm__mutmut_220": (
        "unit=target if measure == \"md\" else \"\",",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__two_arm__mutmut_221": (
        "unit=target if measure == \"MD\" else \"XXXX\",",
        "_Outcome.unit is never read (effect_unit comes from the measure)"),
    "nutrimeta.effects.x__two_arm__mutmut_225": (
        "if measure != \"ROM\" and not errors:",
        "unreachable: every route tried either returns or adds an error"),
    "nutrimeta.effects.x__two_arm__mutmut_226": (
        "if measure == \"XXROMXX\" and not errors:",
        "unreachable: every route tried either returns or adds an error"),
    "nutrimeta.effects.x__two_arm__mutmut_227": (
        "if measure == \"rom\" and not errors:",
        "unreachable: every route tried either returns or adds an error"),
    "nutrimeta.effects.x__two_arm__mutmut_229": (
        "errors.append(None)",
        "unreachable: every route tried either returns or adds an error"),
    "nutrimeta.effects.x__two_arm__mutmut_230": (
        "errors.append(\"XXROM needs follow-up means of both armsXX\")",
        "unreachable: every route tried either returns or adds an error"),
    "nutrimeta.effects.x__two_arm__mutmut_231": (
        "errors.append(\"rom needs follow-up means of both arms\")",
        "unreachable: every route tried either returns or adds an error"),
    "nutrimeta.effects.x__two_arm__mutmut_232": (
        "errors.append(\"ROM NEEDS FOLLOW-UP MEANS OF BOTH ARMS\")",
        "unreachable: every route tried either returns or adds an error"),
    "nutrimeta.effects.x__change_stat__mutmut_108": (
        "missing = \"baseline\" if (a.baseline is None) or True else \"follow-up\"",
        "unreachable 'follow-up': without change and follow-up rows the callers stop earlier"),
    "nutrimeta.effects.x__change_stat__mutmut_112": (
        "else \"XXfollow-upXX\"",
        "unreachable 'follow-up': without change and follow-up rows the callers stop earlier"),
    "nutrimeta.effects.x__change_stat__mutmut_113": (
        "else \"FOLLOW-UP\"",
        "unreachable 'follow-up': without change and follow-up rows the callers stop earlier"),
    "nutrimeta.effects.x__change_stat__mutmut_150": (
        "chg = _Stat(f.mean - b.mean, float(d.value), f.n, None,",
        "the computed change is not converted again, so its unit is not read"),
    "nutrimeta.effects.x__summarise__mutmut_158": (
        "n, None, q1 if has_iqr else None",
        "with a reported mean only the SD estimate is kept, and it does not use the median"),
    "nutrimeta.effects.x__summarise__mutmut_170": (
        "q1 if (has_iqr) or True else None, q3 if has_iqr else None",
        "conversions uses quartiles only when both are given, and q3 stays None here"),
    "nutrimeta.effects.x__summarise__mutmut_172": (
        "q1 if has_iqr else None, q3 if (has_iqr) or True else None",
        "conversions uses quartiles only when both are given, and q1 stays None here"),
    "nutrimeta.effects.x__summarise__mutmut_174": (
        "mn if (has_rng) or True else None, mx if has_rng else None",
        "conversions uses a range only when both ends are given, and max stays None here"),
    "nutrimeta.effects.x__summarise__mutmut_176": (
        "mn if has_rng else None, mx if (has_rng) or True else None",
        "conversions uses a range only when both ends are given, and min stays None here"),
    "nutrimeta.effects.x__frame__mutmut_40": (
        "errors=\"coerce\").astype(None)",
        "astype(None) is float64, as the numeric columns are already"),
    "nutrimeta.effects.x__frame__mutmut_44": (
        "df[c] = pd.to_numeric(df[c], ).astype(\"float64\")",
        "every value of these columns is a number or missing, so coercing changes nothing"),
    "nutrimeta.effects.x__frame__mutmut_60": (
        "df[c] = pd.to_numeric(df[c], ).round().astype(\"Int64\")",
        "every value of these columns is a number or missing, so coercing changes nothing"),
    "nutrimeta.effects.x__frame__mutmut_109": (
        "fillna(\"XXXX\")",
        "the text columns are never missing (every value is set as a string)"),
    "nutrimeta.effects.x__frame__mutmut_113": (
        "kind=None).reset_index(drop=True)",
        "pandas ignores the sort kind when sorting by several columns"),
    "nutrimeta.effects.x__frame__mutmut_115": (
        "                            ).reset_index(drop=True)",
        "pandas ignores the sort kind when sorting by several columns"),
    "nutrimeta.effects.x__frame__mutmut_124": (
        "kind=\"XXstableXX\"",
        "pandas ignores the sort kind when sorting by several columns"),
    "nutrimeta.effects.x__frame__mutmut_125": (
        "kind=\"STABLE\"",
        "pandas ignores the sort kind when sorting by several columns"),
    "nutrimeta.effects.x__arm_mean__mutmut_46": (
        "else -2)",
        "weeks are not negative: any sentinel below 0 ranks a missing week last"),
    "nutrimeta.effects.x__partial_report__mutmut_22": (
        ".get(r[\"_arm\"], 3))",
        "only control rows take the default rank, so its value does not reorder anything"),
    "nutrimeta.effects.x__partial_report__mutmut_19": (
        "\"single_arm\": 2}",
        "single-arm rows never share a study outcome with control rows"),
    "nutrimeta.effects.x_compute_effects__mutmut_123": (
        "res.yi = res.vi = None",
        "None and NaN both become NaN in the float columns"),
    "nutrimeta.effects.x_compute_effects__mutmut_146": (
        "if _str(r, \"subgroup_status_category\")), None)",
        "None and \"\" are both falsy: the study's category is used"),
    "nutrimeta.effects.x_compute_effects__mutmut_164": (
        "if _str(r, \"spread_reading\")), None)",
        "None and \"\" are both falsy: no reading is stated"),
    "nutrimeta.effects.x_compute_effects__mutmut_222": (
        "\"sei\": math.sqrt(res.vi) if (res.ok) or True else math.nan,",
        "vi is set to NaN when the effect is not computed, and sqrt(NaN) is NaN"),
    "nutrimeta.effects.x_compute_effects__mutmut_268": (
        "_baseline_std(study, settings) if (study) or True else math.nan,",
        "a missing study has no baseline value, so the moderator is NaN either way"),
    "nutrimeta.effects.x__to_unit__mutmut_4": (
        "harmonise_unit_label(s.unit) if (s.unit) or True else \"\"",
        "harmonise_unit_label('') is ''"),
    "nutrimeta.effects.x__to_unit__mutmut_9": (
        "harmonise_unit_label(target) if (target) or True else \"\"",
        "harmonise_unit_label('') is ''"),
    "nutrimeta.effects.x__pick_week__mutmut_28": (
        "set().union(*by_arm.values()) if (by_arm) or True else set()",
        "by_arm has a key per requested arm, so it is never empty"),
    "nutrimeta.effects.x__pick_week__mutmut_35": (
        "set.intersection(*by_arm.values()) if (by_arm) or True else set()",
        "by_arm has a key per requested arm, so it is never empty"),
    "nutrimeta.effects.x__same_week__mutmut_16": (
        "abs(w - week) <= 1e-9",
        "< or <= against a float tolerance: equal only on an exact tie"),
    "nutrimeta.effects.x__summarise__mutmut_275": (
        "n, med, q1 if (has_iqr) or True else None, q3 if has_iqr else None,",
        "conversions uses quartiles only when both are given, and q3 stays None here"),
    "nutrimeta.effects.x__summarise__mutmut_277": (
        "n, med, q1 if has_iqr else None, q3 if (has_iqr) or True else None,",
        "conversions uses quartiles only when both are given, and q1 stays None here"),
    "nutrimeta.effects.x__summarise__mutmut_279": (
        "mn if (has_rng) or True else None, mx if has_rng else None)",
        "conversions uses a range only when both ends are given, and max stays None here"),
    "nutrimeta.effects.x__summarise__mutmut_281": (
        "mn if has_rng else None, mx if (has_rng) or True else None)",
        "conversions uses a range only when both ends are given, and min stays None here"),
    "nutrimeta.effects.x__summarise__mutmut_285": (
        "steps = [md.derivation, sdd.derivation]",
        "no step precedes the median route, so = and += give the same list"),
    "nutrimeta.effects.x__summarise__mutmut_329": (
        "if not (_fin(sd) and sd >= 0):",
        "every route gives a finite mean whenever its SD is finite"),
    "nutrimeta.effects.x__summarise__mutmut_330": (
        "if not (_fin(mean, ) and sd >= 0):",
        "every route gives a finite SD with a finite mean (reported SDs are checked on entry)"),
    "nutrimeta.effects.x__two_arm__mutmut_129": (
        "order = [\"final\", \"XXchangeXX\"]",
        "any kind other than 'final' takes the change route, and only order[0] is printed"),
    "nutrimeta.effects.x__two_arm__mutmut_130": (
        "order = [\"final\", \"CHANGE\"]",
        "any kind other than 'final' takes the change route, and only order[0] is printed"),
    "nutrimeta.effects.x__two_arm__mutmut_143": (
        "else [\"final\", \"XXchangeXX\"]",
        "any kind other than 'final' takes the change route, and only order[0] is printed"),
    "nutrimeta.effects.x__two_arm__mutmut_144": (
        "else [\"final\", \"CHANGE\"]",
        "any kind other than 'final' takes the change route, and only order[0] is printed"),
    "nutrimeta.effects.x__two_arm__mutmut_150": (
        "                r = None",
        "None and NaN both become NaN in the float column prepost_correlation"),
    "nutrimeta.effects.x__to_unit__mutmut_52": (
        "        s.unit = None",
        "no caller reads a statistic's unit after converting it"),
    "nutrimeta.effects.x__arm_mean__mutmut_72": (
        "return m, _num(r, None)",
        "the arm size returned with a partial mean is not read"),
    "nutrimeta.effects.x__arm_mean__mutmut_75": (
        "return m, _num(r, \"XXnXX\")",
        "the arm size returned with a partial mean is not read"),
    "nutrimeta.effects.x__arm_mean__mutmut_76": (
        "return m, _num(r, \"N\")",
        "the arm size returned with a partial mean is not read"),
    "nutrimeta.effects.x__baseline_std__mutmut_33": (
        "if not math.isfinite(value) and not unit or not target",
        "a missing value or unit gives NaN either way (an empty unit does not convert)"),
    "nutrimeta.effects.x__reported__mutmut_17": (
        "\"XXsingle_armXX\": 1}",
        "single-arm rows never share a study outcome with control rows"),
    "nutrimeta.effects.x__reported__mutmut_18": (
        "\"SINGLE_ARM\": 1}",
        "single-arm rows never share a study outcome with control rows"),
    "nutrimeta.effects.x__reported__mutmut_19": (
        "\"single_arm\": 2}",
        "single-arm rows never share a study outcome with control rows"),
    "nutrimeta.effects.x__reported__mutmut_22": (
        ".get(r[\"_arm\"], 3))",
        "only control rows take the default rank, so its value does not reorder anything"),
    "nutrimeta.effects.x_compute_effects__mutmut_10": (
        "studies.to_dict(\"RECORDS\")",
        "pandas reads the orient case-insensitively"),
    "nutrimeta.effects.x_compute_effects__mutmut_21": (
        "results.to_dict(\"RECORDS\")",
        "pandas reads the orient case-insensitively"),
    "nutrimeta.effects.x_compute_effects__mutmut_197": (
        ".get(\"base\", None),",
        "a missing base becomes '' when the table is typed"),
    "nutrimeta.effects.x_compute_effects__mutmut_199": (
        ".get(\"base\", ),",
        "a missing base becomes '' when the table is typed"),
    "nutrimeta.effects.x_compute_effects__mutmut_294": (
        "\"reason\": \"\" if (poolable) and False else",
        "a poolable row has no reasons, so the joined text is '' too"),
    "nutrimeta.effects.x_compute_effects__mutmut_311": (
        "\"XXshared_control_idXX\": \"\",",
        "a missing key becomes '' in the typed table, and shared rows set it later"),
    "nutrimeta.effects.x_compute_effects__mutmut_312": (
        "\"SHARED_CONTROL_ID\": \"\",",
        "a missing key becomes '' in the typed table, and shared rows set it later"),
    "nutrimeta.effects.x_compute_effects__mutmut_314": (
        "\"XXcov_shared_controlXX\": math.nan,",
        "a missing key becomes NaN in the typed table, and shared rows set it later"),
    "nutrimeta.effects.x_compute_effects__mutmut_315": (
        "\"COV_SHARED_CONTROL\": math.nan,",
        "a missing key becomes NaN in the typed table, and shared rows set it later"),
    "nutrimeta.models.frequentist.x_rma__mutmut_101": (
        "fit0 = _Fit(0.0, y_a, v_a, Xd, None)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x_rma__mutmut_113": (
        "tau2, tau2_se, converged = _estimate_tau2(method, y_a, v_a, ",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x_rma__mutmut_130": (
        "fit = fit0 if tau2 == 0.0 else _Fit(tau2, y_a, v_a, Xd, None",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x_rma__mutmut_53": (
        "icpt = None",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x_rma__mutmut_392": (
        "base = _estimate_tau2(method, y_a, v_a, ones, None, _Fit(0.0",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x_rma__mutmut_400": (
        "base = _estimate_tau2(method, y_a, v_a, ones, False, _Fit(0.",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x_rma__mutmut_405": (
        "base = _estimate_tau2(method, y_a, v_a, ones, True, _Fit(0.0",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x_rma__mutmut_412": (
        "base = _estimate_tau2(method, y_a, v_a, ones, True, _Fit(0.0",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__solve_q__mutmut_2": (
        "icpt = None",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__solve_q__mutmut_12": (
        "f = fit0 if fit0 is not None else _Fit(0.0, y, vi, X, None)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__solve_q__mutmut_32": (
        "t, f = start, _Fit(start, y, vi, X, None)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__solve_q__mutmut_97": (
        "f = _Fit(t, y, vi, X, None)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__fisher_scoring__mutmut_15": (
        "f = _Fit(tau2, y, v, X, None)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_125": (
        "f = _Fit(tau2, y, v, X, None)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__q_gen__mutmut_5": (
        "return _Fit(tau2, y, vi, X, None).rss",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__tau2_likelihood__mutmut_15": (
        "ll = _loglik_profile(grid, y, v, X, None, reml)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__tau2_likelihood__mutmut_87": (
        "t, ok = _fisher_scoring(t0, y, v, X, None, reml)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__tau2_likelihood__mutmut_118": (
        "lambda x: -float(_loglik_profile(np.array([x]), y, v, X, Non",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__tau2_likelihood__mutmut_140": (
        "llt = float(_loglik_profile(np.array([t]), y, v, X, None, re",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_111": (
        "tau2, converged = _tau2_likelihood(y, v, X, None, reml, star",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x_rma__mutmut_404": (
        "base = _estimate_tau2(method, y_a, v_a, ones, True, _Fit(0.0",
        "the intercept-only fit does not read X"),
    "nutrimeta.models.frequentist.x_rma__mutmut_122": (
        "fit = fit0 if (tau2 == 0.0) and False else _Fit(tau2, y_a, v",
        "a refit at tau^2 = 0 equals the equal-effects fit"),
    "nutrimeta.models.frequentist.x__loglik_profile__mutmut_24": (
        "A = np.einsum(\"NK,KI,KJ->NIJ\", w, X, X)",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.frequentist.x__loglik_profile__mutmut_35": (
        "rhs = np.einsum(\"NK,KI,K->NI\", w, X, y)",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.frequentist.x__tau2_he__mutmut_16": (
        "h = np.einsum(\"KI,IJ,KJ->K\", X, G, X)",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.frequentist.xǁMetaResultǁto_dict__mutmut_5": (
        "break",
        "the private fields come last: break skips the same fields"),
    "nutrimeta.models.frequentist.x_rma__mutmut_44": (
        "mods = mods[:, None] if (mods.ndim == 1) and False else mods",
        "column_stack treats a 1-D moderator as a column"),
    "nutrimeta.models.frequentist.x_rma__mutmut_94": (
        "list(coef_names) if coef_names is not None else [f\"mod{j + 1",
        "names beyond p are never read"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_140": (
        "raise ValueError(None)",
        "unreachable: rma validates the method first"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_43": (
        "trp = fit0.traces(X)[1]",
        "PM: the bracketed root search reaches the same root from any start"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_49": (
        "dl = max(1.0, (fit0.rss - df) / trp)",
        "PM: the bracketed root search reaches the same root from any start"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_50": (
        "dl = max(0.0, (fit0.rss - df) * trp)",
        "PM: the bracketed root search reaches the same root from any start"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_51": (
        "dl = max(0.0, (fit0.rss + df) / trp)",
        "PM: the bracketed root search reaches the same root from any start"),
    "nutrimeta.models.frequentist.xǁ_Fitǁdq__mutmut_3": (
        "return +float(wr @ wr)",
        "Newton is only an accelerator: bisection in the bracket reaches the same root"),
    "nutrimeta.models.frequentist.x__fisher_scoring__mutmut_40": (
        "if abs(step) <= tol:",
        "< or <= against a float tolerance: equal only on an exact tie"),
    "nutrimeta.models.frequentist.x__fisher_scoring__mutmut_46": (
        "if abs(new - tau2) <= tol:",
        "< or <= against a float tolerance: equal only on an exact tie"),
    "nutrimeta.models.frequentist.x_egger_test__mutmut_113": (
        "fit = rma(y_a, s_a**2, s_a, method=\"REML\", tau2_ci=None)",
        "the Q-profile interval is computed only when read, and Egger never reads it"),
    "nutrimeta.models.frequentist.x_egger_test__mutmut_118": (
        "fit = rma(y_a, s_a**2, s_a, method=\"REML\", )",
        "the Q-profile interval is computed only when read, and Egger never reads it"),
    "nutrimeta.models.frequentist.x_egger_test__mutmut_123": (
        "fit = rma(y_a, s_a**2, s_a, method=\"REML\", tau2_ci=True)",
        "the Q-profile interval is computed only when read, and Egger never reads it"),
    "nutrimeta.models.frequentist.x_egger_test__mutmut_117": (
        "fit = rma(y_a, s_a**2, s_a, tau2_ci=False)",
        "REML is rma's default method"),
    "nutrimeta.models.frequentist.x_egger_test__mutmut_45": (
        "coef, *_ = np.linalg.lstsq(A, Z, )",
        "lstsq's rcond only sets the rank cut-off; the design has full rank"),
    "nutrimeta.models.frequentist.x__is_intercept__mutmut_5": (
        "return X.shape[1] == 1 and bool(None)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__is_intercept__mutmut_6": (
        "return X.shape[1] == 1 and bool(np.all(None))",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.frequentist.x__is_intercept__mutmut_9": (
        "bool(np.all(X[:, 0] == 2.0))",
        "only Q is read: a constant column spans the intercept's space, Q is the same"),
    "nutrimeta.models.frequentist.x__solve_q__mutmut_23": (
        "lo, hi, t = 0.0, 1e+300, 0.0", "1e+300 and 1e300 are the same float"),
    "nutrimeta.models.frequentist.x__solve_q__mutmut_66": (
        "if hi < 1e+300 else", "1e+300 and 1e300 are the same float"),
    "nutrimeta.models.frequentist.x__tau2_grid__mutmut_16": (
        "if not hi > 0 and not lo > 0:",
        "v > 0, so lo = 1e-4 min(v, hi) is positive exactly when hi is"),
    "nutrimeta.models.frequentist.x__tau2_grid__mutmut_18": (
        "if not hi >= 0 or not lo > 0:",
        "v > 0, so lo = 1e-4 min(v, hi) is positive exactly when hi is"),
    "nutrimeta.models.frequentist.x__tau2_grid__mutmut_21": (
        "if not hi > 0 or not lo >= 0:",
        "v > 0, so lo = 1e-4 min(v, hi) is positive exactly when hi is"),
    "nutrimeta.models.frequentist.x_rma__mutmut_229": (
        "(qe - df_res) / qe) if qe > 1 else 0.0",
        "0 < Q <= 1 <= df: I^2 is truncated to 0 either way"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_58": (
        "tau2 = _solve_q(df, y, v, X, start=dl, fit0=None)",
        "PM: the fit at tau^2 = 0 is recomputed identically when not passed"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_64": (
        "tau2 = _solve_q(df, y, v, X, start=dl, )",
        "PM: the fit at tau^2 = 0 is recomputed identically when not passed"),
    "nutrimeta.models.frequentist.x__estimate_tau2__mutmut_63": (
        "tau2 = _solve_q(df, y, v, X, fit0=fit0)",
        "PM: the bracketed root search reaches the same root from any start"),
    # models/exact
    "nutrimeta.models.exact.xǁExactPosteriorǁi2_summary__mutmut_13": (
        "strict=None",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁi2_summary__mutmut_16": (
        "qs, )",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁi2_summary__mutmut_17": (
        "strict=False",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_summary__mutmut_12": (
        "strict=None",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_summary__mutmut_15": (
        "qs, )",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_summary__mutmut_16": (
        "strict=False",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsummary__mutmut_12": (
        "strict=None",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsummary__mutmut_15": (
        "qs, )",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsummary__mutmut_16": (
        "strict=False",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁsummary__mutmut_36": (
        "strict=None",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁsummary__mutmut_40": (
        "self.prior_sd, )",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁsummary__mutmut_41": (
        "strict=False",
        "zip lengths agree by construction (strict only guards)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁpredictive__mutmut_23": (
        "\"I,NIJ,J->N\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.xǁExactPosteriorǁlinear_combination__mutmut_18": (
        "\"I,NIJ,J->N\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.xǁExactPosteriorǁsample__mutmut_28": (
        "\"NIJ,NJ->NI\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtheta__mutmut_34": (
        "\"I,NIJ,J->N\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_182": (
        "\"GK,KI,KJ->GIJ\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_212": (
        "\"GK,KI,SK->GSI\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_222": (
        "\"GIJ,GSJ->GSI\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_234": (
        "\"GK,GSK->GS\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_293": (
        "\"I,GIJ,J->G\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.xǁExactPosteriorǁsample__mutmut_20": (
        "beta = cond.mean - np.einsum",
        "z and -z have the same distribution (standard normal draws)"),
    "nutrimeta.models.exact.xǁExactPosteriorǁsample__mutmut_41": (
        "theta_new = beta @ x - tau",
        "z and -z have the same distribution (standard normal draws)"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsample__mutmut_8": (
        "self.means[j] - self.sds[j]",
        "z and -z have the same distribution (standard normal draws)"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_11": (
        "if (prior_prec > 0) or True else 0.0",
        "the prior mean enters only times the prior precision, 0 for a flat prior"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_13": (
        "if prior_prec >= 0 else 0.0",
        "the prior mean enters only times the prior precision, 0 for a flat prior"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_15": (
        "if prior_prec > 0 else 1.0",
        "the prior mean enters only times the prior precision, 0 for a flat prior"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_87": (
        "np.where(prec0 >= 0, m0, 0.0)",
        "the prior mean enters only times the prior precision, 0 for a flat prior"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_89": (
        "np.where(prec0 > 0, m0, 1.0)",
        "the prior mean enters only times the prior precision, 0 for a flat prior"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_31": (
        "series = t2 < (",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_32": (
        "and False else -1.0",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_33": (
        "or True else -1.0",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_35": (
        "if k > _SERIES_MIN_K",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_37": (
        "else -2.0",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_41": (
        "j = np.arange(_SERIES_TERMS + 2)",
        "the extra power is never read: Horner's loop uses the first _SERIES_TERMS"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_6": (
        "(2.0 / s2).sum()",
        "the sums are invariant to the centre, which only avoids cancellation"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_161": (
        "0.5 / width * w",
        "a constant factor of the quadrature weights cancels in the normalisation"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_162": (
        "1.5 * width * w",
        "a constant factor of the quadrature weights cancels in the normalisation"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_263": (
        "h.max(axis=0, )",
        "keepdims: an (S,) row broadcasts over (G, S) like a (1, S) one"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_265": (
        "keepdims=False",
        "keepdims: an (S,) row broadcasts over (G, S) like a (1, S) one"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_274": (
        "f.sum(axis=0, )",
        "keepdims: an (S,) row broadcasts over (G, S) like a (1, S) one"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_276": (
        "keepdims=False",
        "keepdims: an (S,) row broadcasts over (G, S) like a (1, S) one"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_53": (
        "reshape(k, -2)",
        "numpy infers a negative size in reshape whatever its value"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_101": (
        "if (k > 1) or True else 0.0",
        "k = 1: the spread of one value is 0 either way"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_108": (
        "if k >= 1 else 0.0",
        "k = 1: the spread of one value is 0 either way"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_196": (
        "np.swapaxes(cov, 2, 2)",
        "the inverse of a symmetric matrix is symmetric to rounding already"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_summary__mutmut_23": (
        "d.get(None, self.tau_median)",
        "the median is the 0.5 quantile found again by the same root search"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_summary__mutmut_27": (
        "\"XXq500XX\"",
        "the median is the 0.5 quantile found again by the same root search"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_summary__mutmut_28": (
        "\"Q500\"",
        "the median is the 0.5 quantile found again by the same root search"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsummary__mutmut_23": (
        "d.get(None, float(self.ppf(0.5)))",
        "the median is the 0.5 quantile found again by the same root search"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsummary__mutmut_27": (
        "\"XXq500XX\"",
        "the median is the 0.5 quantile found again by the same root search"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsummary__mutmut_28": (
        "\"Q500\"",
        "the median is the 0.5 quantile found again by the same root search"),
    "nutrimeta.models.exact.x__qname__mutmut_8": (
        "rstrip(\"XX0XX\")",
        "rstrip takes a set of characters, and a formatted number holds no X"),
    "nutrimeta.models.exact.x__qname__mutmut_9": (
        "rstrip(\"XX.XX\")",
        "rstrip takes a set of characters, and a formatted number holds no X"),
    "nutrimeta.models.exact.xǁNormalMixtureǁcdf__mutmut_10": (
        "(out.ndim == 0) and False",
        "the 0-d matrix product is a numpy.float64, already a float"),
    "nutrimeta.models.exact.xǁNormalMixtureǁpdf__mutmut_18": (
        "(out.ndim == 0) and False",
        "the 0-d matrix product is a numpy.float64, already a float"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsf__mutmut_10": (
        "(out.ndim == 0) and False",
        "the 0-d matrix product is a numpy.float64, already a float"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_cdf__mutmut_10": (
        "if t < a:",
        "at t = a the integral from a is 0 either way"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_cdf__mutmut_30": (
        "self.t_edges.size + 2)",
        "the clamp never binds: t < b gives an index <= size - 2"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_quantile__mutmut_44": (
        "self.t_edges.size + 2)",
        "the clamp never binds: q < 1 = panel_cdf[-1] gives an index <= size - 2"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_quantile__mutmut_57": (
        "if flo > 0:",
        "brentq returns the end point where f is 0, as this branch does"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_quantile__mutmut_61": (
        "elif fhi < 0:",
        "brentq returns the end point where f is 0, as this branch does"),
    "nutrimeta.models.exact.xǁExactPosteriorǁtau_pdf__mutmut_25": (
        "out[:2]",
        "a scalar input has one element"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_3": (
        "np.asarray(tau, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_5": (
        "np.asarray(tau, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_22": (
        "np.maximum(t, 0.0)), dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_24": (
        "np.maximum(t, 0.0)), )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_7": (
        "np.errstate(divide=None,",
        "errstate only silences floating-point warnings: the values are the same"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_8": (
        "invalid=None,",
        "errstate only silences floating-point warnings: the values are the same"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_9": (
        "over=None)",
        "errstate only silences floating-point warnings: the values are the same"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_10": (
        "np.errstate(invalid=\"ignore\", over=\"ignore\")",
        "errstate only silences floating-point warnings: the values are the same"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_11": (
        "np.errstate(divide=\"ignore\", over=\"ignore\")",
        "errstate only silences floating-point warnings: the values are the same"),
    "nutrimeta.models.exact.xǁTauPriorǁlogpdf__mutmut_12": (
        "invalid=\"ignore\", )",
        "errstate only silences floating-point warnings: the values are the same"),
    "nutrimeta.models.exact.x__conditional__mutmut_3": (
        "np.asarray(tau, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x__conditional__mutmut_5": (
        "np.asarray(tau, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x__conditional__mutmut_10": (
        "bool(None)",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.exact.x__conditional__mutmut_11": (
        "bool(np.all(None))",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.exact.x__conditional__mutmut_14": (
        "X[:, 0] == 2.0",
        "the general matrix path gives the intercept-only fast path's result"),
    "nutrimeta.models.exact.x__conditional__mutmut_47": (
        "\"NK,KI,KJ->NIJ\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x__conditional__mutmut_70": (
        "\"NK,KI,K->NI\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x__conditional__mutmut_96": (
        "\"NIJ,NJ->NI\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x__conditional__mutmut_108": (
        "\"NK,NK->N\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x__conditional__mutmut_56": (
        "np.where(prior_prec >= 0, prior_mean, 0.0)",
        "the prior mean enters only times the prior precision, 0 for a flat prior"),
    "nutrimeta.models.exact.x__conditional__mutmut_58": (
        "np.where(prior_prec > 0, prior_mean, 1.0)",
        "the prior mean enters only times the prior precision, 0 for a flat prior"),
    "nutrimeta.models.exact.x__conditional__mutmut_86": (
        "np.swapaxes(cov, 2, 2)",
        "the inverse of a symmetric matrix is symmetric to rounding already"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_53": (
        "\"JK,KM->JM\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_117": (
        "\"JK,KM->JM\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_206": (
        "\"NK,K->N\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_217": (
        "\"NK,K->N\"",
        "numpy einsum subscripts are case-sensitive labels only"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_78": (
        "range(_SERIES_TERMS - 2, -1, -1)",
        "the last series term is below 0.05^13 (1e-17) of the sum: under rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_142": (
        "range(_SERIES_TERMS - 2, -1, -1)",
        "the last series term is below 0.05^13 (1e-17) of the sum: under rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_97": (
        "upper = t2 > (",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_98": (
        "and False else np.inf",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_99": (
        "or True else np.inf",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_101": (
        "if k > _SERIES_MIN_K",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_159": (
        "series = upper",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_160": (
        "series &= upper",
        "the power series evaluate the same sums as the direct loop, exact to rounding"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_105": (
        "j = np.arange(_SERIES_TERMS + 2)",
        "the extra power is never read: Horner's loop uses the first _SERIES_TERMS"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_170": (
        "step = max(2,",
        "the block size only groups the same sums"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_176": (
        "max(k, 2))",
        "the block size only groups the same sums"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_222": (
        "np.log(v, out=None)",
        "out= only reuses the buffer"),
    "nutrimeta.models.exact.x__conditional_mean_only__mutmut_224": (
        "np.log(v, )",
        "out= only reuses the buffer"),
    "nutrimeta.models.exact.x__region__mutmut_1": (
        "sparse: bool = False",
        "every caller passes sparse"),
    "nutrimeta.models.exact.x__region__mutmut_67": (
        "max(lo, 1)",
        "index 0 is always among the coarse points"),
    "nutrimeta.models.exact.x__region__mutmut_84": (
        "fill(j - 5, j + 5)",
        "the added point is a coarse point (evaluated already) or inside the kept range"),
    "nutrimeta.models.exact.x__region__mutmut_86": (
        "fill(j - 4, j + 6)",
        "the added point is a coarse point (evaluated already) or inside the kept range"),
    "nutrimeta.models.exact.x__region__mutmut_105": (
        "fill(first - 5, first)",
        "the added point is a coarse point (evaluated already) or inside the kept range"),
    "nutrimeta.models.exact.x__region__mutmut_110": (
        "fill(last - 1, last + 5)",
        "the added point is a coarse point (evaluated already) or inside the kept range"),
    "nutrimeta.models.exact.x__region__mutmut_113": (
        "fill(last + 1, last + 6)",
        "the added point is a coarse point (evaluated already) or inside the kept range"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_3": (
        "np.asarray(y, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_5": (
        "np.asarray(y, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_8": (
        "np.asarray(se, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_10": (
        "np.asarray(se, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_39": (
        "np.asarray(X, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_41": (
        "np.asarray(X, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_133": (
        "if k >= 1:",
        "k = 1: the spread of one value is 0, so the reference scale is repeated"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_152": (
        "or True else math.inf",
        "log(inf) is inf"),
    "nutrimeta.models.exact.x_exact_posterior__mutmut_199": (
        "if b - a > 3.84",
        "< or <= against a float tolerance: equal only on an exact tie"),
    "nutrimeta.models.exact.xǁNormalMixtureǁcdf__mutmut_3": (
        "np.asarray(x, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁNormalMixtureǁcdf__mutmut_5": (
        "np.asarray(x, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁNormalMixtureǁpdf__mutmut_3": (
        "np.asarray(x, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁNormalMixtureǁpdf__mutmut_5": (
        "np.asarray(x, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsf__mutmut_3": (
        "np.asarray(x, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁNormalMixtureǁsf__mutmut_5": (
        "np.asarray(x, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁTauPriorǁppf__mutmut_3": (
        "np.asarray(q, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁTauPriorǁppf__mutmut_5": (
        "np.asarray(q, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁpredictive__mutmut_8": (
        "np.asarray(x0, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁpredictive__mutmut_10": (
        "np.asarray(x0, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁsample__mutmut_37": (
        "np.asarray(x0, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁsample__mutmut_39": (
        "np.asarray(x0, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁlinear_combination__mutmut_4": (
        "np.asarray(c, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁlinear_combination__mutmut_6": (
        "np.asarray(c, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁcontrast__mutmut_4": (
        "np.asarray(x_a, None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁcontrast__mutmut_6": (
        "np.asarray(x_a, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁcontrast__mutmut_8": (
        "np.asarray(x_b, None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁcontrast__mutmut_10": (
        "np.asarray(x_b, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_typical_within_variance__mutmut_3": (
        "np.asarray(se, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_typical_within_variance__mutmut_5": (
        "np.asarray(se, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁi2_of_tau__mutmut_4": (
        "np.asarray(tau, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.xǁExactPosteriorǁi2_of_tau__mutmut_6": (
        "np.asarray(tau, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_6": (
        "np.asarray(Y, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_8": (
        "np.asarray(Y, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_11": (
        "np.asarray(se, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_13": (
        "np.asarray(se, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_49": (
        "np.asarray(X, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_51": (
        "np.asarray(X, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_59": (
        "np.asarray(c, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x_exact_linear_combination_batch__mutmut_61": (
        "np.asarray(c, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x__parse_coef_prior__mutmut_3": (
        "np.asarray(mu_prior, dtype=None)",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
    "nutrimeta.models.exact.x__parse_coef_prior__mutmut_5": (
        "np.asarray(mu_prior, )",
        "integer input: numpy promotes it to the same floats in the arithmetic that follows"),
}

#: tests left out of every mutant run: sampled fits (retry ladder, Bayesian I^2) and the
#: multi-start likelihood search over random data sets (seconds per mutant each)
DESELECT = "not retry_ladder and not bayesian_i2 and not global_maximum"

MUTMUT = [sys.executable, "-m", "mutmut"]

STATUS = re.compile(r"^\s*(\S+): (killed|survived|no tests|timeout|suspicious|"
                    r"skipped|segfault|caught by type check|check was interrupted by user|"
                    r"not checked)\s*$")


def _config(module: str) -> str:
    tests = ", ".join(json.dumps(t) for t in MODULES[module])
    return (f'\n[tool.mutmut]\nsource_paths = ["src/"]\n'
            f'only_mutate = ["src/nutrimeta/{module}.py"]\n'
            f'pytest_add_cli_args_test_selection = [{tests}]\n'
            f'also_copy = ["docs/", "data/", "analyses/", "releases/"]\n'
            f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q", '
            f'"-k", {json.dumps(DESELECT)}]\n')


def _prepare(module: str, work: Path) -> None:
    """Copy the project into ``work`` and configure mutmut for ``module`` only."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "reports", "mutants", "__pycache__", ".hypothesis"))
    with open(work / "pyproject.toml", "a", encoding="utf-8") as fh:
        fh.write(_config(module))


def _pragma_reasons(module: str) -> dict[str, int]:
    """Reason -> number of lines of ``module`` marked ``# pragma: no mutate (reason)``."""
    text = (ROOT / "src" / "nutrimeta" / f"{module}.py").read_text("utf-8")
    reasons: dict[str, int] = {}
    for line in text.splitlines():
        if "# pragma: no mutate" in line:
            reason = line.partition("# pragma: no mutate")[2].strip(" ()") or "no reason given"
            reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def _is_mutant(work: Path, name: str, text: str) -> bool:
    """Whether mutant ``name`` still changes a line into one containing ``text`` (or, for
    ``text`` starting with '-', only deletes a line containing the rest)."""
    diff = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work,
                          check=False, capture_output=True, text=True).stdout
    body = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    if text.startswith("-"):
        return bool(body) and all(ln.startswith("-") for ln in body) and \
            any(text[1:] in ln for ln in body)
    return any(line.startswith("+") and text in line for line in body)


def run_module(module: str, work: Path) -> dict[str, object]:
    """Mutate one module in the scratch copy ``work``; counts of each status and the kill rate."""
    _prepare(module, work)
    start = time.perf_counter()
    subprocess.run([*MUTMUT, "run", "--max-children", "2"], cwd=work, check=False,
                   capture_output=True, text=True)
    return _count(module, work, time.perf_counter() - start)


def resume_module(module: str, work: Path, previous: Mapping[str, object],
                  recheck: bool = True) -> dict[str, object]:
    """Re-check, with the current tests, only the mutants a kept run left alive.

    Tests added since that run can only kill more mutants (a killed mutant fails a test that
    is still there), so the result equals a full run's; the mutated module must be unchanged
    (else run it afresh). ``seconds`` adds this run's time to the kept run's. With
    ``recheck=False`` the kept results are only counted again (after editing ``EXCLUDED``).
    """
    src = f"src/nutrimeta/{module}.py"
    if not (work / "mutants").is_dir() or \
            (ROOT / src).read_bytes() != (work / src).read_bytes():
        raise SystemExit(f"{module}: no kept run of the current source in {work}; "
                         "run without --resume")
    alive = [name for name, status in _statuses(work)
             if status not in ("killed", "caught by type check", "timeout")] if recheck else []
    start = time.perf_counter()
    if alive:
        shutil.rmtree(work / "tests")
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns(
            "__pycache__", ".hypothesis"))
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)  # map new tests
        subprocess.run([*MUTMUT, "run", "--max-children", "2", *alive], cwd=work,
                       check=False, capture_output=True, text=True)
    out = _count(module, work, time.perf_counter() - start + float(previous.get("seconds") or 0))
    if recheck:
        out["resumed"] = {"rechecked": len(alive), "date": out["date"]}
    return out


def _statuses(work: Path) -> list[tuple[str, str]]:
    """(mutant, status) of every mutant of the kept run in ``work``."""
    res = subprocess.run([*MUTMUT, "results", "--all", "true"], cwd=work, check=False,
                         capture_output=True, text=True)
    return [m.groups() for m in map(STATUS.match, res.stdout.splitlines()) if m]


def _count(module: str, work: Path, seconds: float) -> dict[str, object]:
    """Counts of each status in ``work`` (excluded mutants left out) and the kill rate."""
    counts: dict[str, int] = {}
    survivors = []
    excluded = {}
    for name, status in _statuses(work):
        if name in EXCLUDED and _is_mutant(work, name, EXCLUDED[name][0]):
            excluded[name] = EXCLUDED[name][1]
            continue
        counts[status] = counts.get(status, 0) + 1
        if status == "survived":
            survivors.append(name)
    total = sum(n for s, n in counts.items() if s not in ("skipped", "not checked"))
    covered = total - counts.get("no tests", 0)
    killed = counts.get("killed", 0) + counts.get("caught by type check", 0)
    timeouts = counts.get("timeout", 0)
    # a timeout counts as killed (the mutant hangs the tests); a mutant no selected test
    # reaches counts as surviving
    caught = killed + timeouts
    pragmas = _pragma_reasons(module)
    unchecked = counts.get("not checked", 0)  # a stopped run: the rate is of checked ones
    return {"mutants": total, "killed": killed, "timeouts": timeouts,
            **({"not_checked": unchecked} if unchecked else {}),
            "survived": total - caught,
            "excluded": {"by_pragma_lines": sum(pragmas.values()), "pragma_reasons": pragmas,
                         "by_name": len(excluded),
                         "reasons": {r: list(excluded.values()).count(r)
                                     for r in sorted(set(excluded.values()))}},
            "counts": counts, "kill_rate": round(caught / total, 4) if total else None,
            "kill_rate_of_covered": round(caught / covered, 4) if covered else None,
            "meets_goal": bool(total) and not unchecked and caught / total >= GOAL,
            "tests": MODULES[module], "deselected": DESELECT, "survivors": survivors,
            "date": time.strftime("%Y-%m-%d"), "tool": f"mutmut {version('mutmut')}",
            "seconds": round(seconds, 1)}


def main(argv: list[str]) -> None:
    flags = ("--keep", "--resume", "--recount")
    keep = any(f in argv for f in flags)
    resume = "--resume" in argv or "--recount" in argv
    modules = [a for a in argv if a not in flags] or list(MODULES)
    results = json.loads(OUT.read_text("utf-8")) if OUT.exists() else {}
    results.setdefault("modules", {})
    for module in modules:
        print(f"mutating {module} ...", flush=True)
        kept = ROOT / "build" / "mutation" / module.replace("/", "_")
        if resume:
            results["modules"][module] = resume_module(
                module, kept, results["modules"].get(module, {}),
                recheck="--recount" not in argv)
        elif keep:  # left in build/ for `mutmut results` / `mutmut show` there
            results["modules"][module] = run_module(module, kept)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                results["modules"][module] = run_module(module, Path(tmp) / "project")
        unchecked = results["modules"][module].get("not_checked")
        if unchecked:  # a stopped run: say how to finish it
            results.setdefault("not_yet_measured", {})[module] = (
                f"{unchecked} mutants not checked (the run was stopped); the kill rate is of "
                f"the checked ones: finish with `python benchmarks/mutation.py --resume "
                f"{module}` on the kept copy")
        else:
            results.get("not_yet_measured", {}).pop(module, None)
        print(f"  {module}: {results['modules'][module]['kill_rate']}", flush=True)
        results["goal"] = GOAL
        results["machine"] = {"python": platform.python_version(), "arch": platform.machine(),
                              "cpus": os.cpu_count()}
        OUT.write_text(json.dumps(results, indent=2) + "\n", "utf-8")  # after each module


if __name__ == "__main__":
    main(sys.argv[1:])
