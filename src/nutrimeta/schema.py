"""The evidence schema: every column of every curated table, in one place.

This module is the single source of truth for the data dictionary. ``data/datapackage.json``
(a Frictionless Data Package with inline Table Schemas) is generated from it by
``nutrimeta datapackage`` and a test keeps the two in sync; the validator builds its pandera
schemas from the same specs.

Curated data live in one folder per evidence base, ``data/<evidence_base>/``, each holding
``studies.csv``, ``results.csv``, ``syntheses.csv``, ``references.bib`` and, optionally,
``risk_of_bias.csv``. Numbers are recorded
exactly as reported; every conversion happens in code (:mod:`nutrimeta.effects`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "integer", "number", "boolean"]

EVIDENCE_BASES: dict[str, dict[str, str]] = {
    "zinc_testosterone": {
        "nutrient": "zinc",
        "title": "Zinc supplementation and testosterone",
    },
    "selenium_thyroid": {
        "nutrient": "selenium",
        "title": "Selenium supplementation and thyroid function",
    },
    "magnesium_insulin": {
        "nutrient": "magnesium",
        "title": "Magnesium supplementation and insulin sensitivity",
    },
}

NUTRIENTS = ("zinc", "selenium", "magnesium")

#: Unit in which baseline nutrient status is harmonised for the meta-regression moderator.
MODERATOR_UNITS: dict[str, str] = {"zinc": "umol/L", "selenium": "ug/L", "magnesium": "mmol/L"}

#: Outcomes, with the evidence base they belong to and a default unit used for pooling.
OUTCOMES: dict[str, dict[str, str]] = {
    "total_testosterone": {"base": "zinc_testosterone", "unit": "nmol/L",
                           "label": "Total testosterone"},
    "free_testosterone": {"base": "zinc_testosterone", "unit": "pmol/L",
                          "label": "Free testosterone"},
    "tpo_ab": {"base": "selenium_thyroid", "unit": "IU/mL", "label": "TPO antibodies"},
    "tg_ab": {"base": "selenium_thyroid", "unit": "IU/mL", "label": "Thyroglobulin antibodies"},
    "tsh": {"base": "selenium_thyroid", "unit": "mIU/L", "label": "TSH"},
    "ft4": {"base": "selenium_thyroid", "unit": "pmol/L", "label": "Free T4"},
    "ft3": {"base": "selenium_thyroid", "unit": "pmol/L", "label": "Free T3"},
    "tt4": {"base": "selenium_thyroid", "unit": "nmol/L", "label": "Total T4"},
    "tt3": {"base": "selenium_thyroid", "unit": "nmol/L", "label": "Total T3"},
    "t3_t4_ratio": {"base": "selenium_thyroid", "unit": "ratio", "label": "T3:T4 ratio"},
    "homa_ir": {"base": "magnesium_insulin", "unit": "index", "label": "HOMA-IR"},
    "fasting_insulin": {"base": "magnesium_insulin", "unit": "pmol/L", "label": "Fasting insulin"},
    "fasting_glucose": {"base": "magnesium_insulin", "unit": "mmol/L", "label": "Fasting glucose"},
    "hba1c": {"base": "magnesium_insulin", "unit": "%", "label": "HbA1c"},
    # Nutrient status measured during the trial (compliance / achieved status), any base.
    "serum_zinc": {"base": "zinc_testosterone", "unit": "umol/L", "label": "Serum/plasma zinc"},
    "serum_selenium": {"base": "selenium_thyroid", "unit": "umol/L",
                       "label": "Serum/plasma selenium"},
    "serum_magnesium": {"base": "magnesium_insulin", "unit": "mmol/L", "label": "Serum magnesium"},
}

DESIGNS = (
    "parallel_rct",  # randomised, parallel groups, with a control arm
    "crossover_rct",  # randomised crossover
    "controlled_nonrandomised",  # concurrent control arm, not randomised
    "single_arm_prepost",  # one arm, before vs after
)
#: Designs of the primary analyses (randomised trials); the one definition of the group.
RANDOMISED_DESIGNS = ("parallel_rct", "crossover_rct")
STATUS_CATEGORIES = ("deficient", "marginal", "replete", "unknown")
INCLUSION_STATUSES = (
    "included",  # poolable with the primary evidence of its base
    "not_poolable",  # fits the question but lacks numbers usable for pooling (reason required)
    "separate",  # recorded and reported, analysed apart (e.g. women/PCOS, depletion studies)
    "excluded",  # does not fit the question, or duplicate report of a cohort (reason required)
)
#: Why a record is not pooled or not used (``studies.reason_code``): one code per record, with
#: the free-text detail in ``inclusion_reason``.
REASON_CODES: dict[str, str] = {
    "direction_or_p_only": "only directions, p-values or 'no significant difference' "
                           "statements were read for the target outcomes",
    "no_dispersion": "means or changes without SD, SE, CI or a usable exact p-value",
    "no_arm_n": "numbers read, but the number per arm (and an exact total to split) is missing",
    "one_arm_only": "numbers for one arm only (no between-arm contrast)",
    "unit_unknown": "numbers read without a unit, or with a unit that cannot be right",
    "ambiguous_numbers": "numbers that cannot be assigned to an arm, time point or statistic",
    "other_statistic": "only statistics that are not the outcome contrast (dose-response "
                       "slopes, responder proportions, non-target outcomes)",
    "no_target_outcome": "the report gives no number, direction or p-value for a target outcome",
    "report_not_read": "the trial report was not found; known only from a review's "
                       "study-level table",
    "single_arm": "no control arm (pre/post design): analysed apart",
    "depletion": "controlled nutrient depletion, not supplementation: analysed apart",
    "population_apart": "population analysed apart (e.g. women with PCOS, pregnancy)",
    "co_intervention": "the nutrient is given with another active agent, or the comparison "
                       "does not isolate it",
    "delivery_apart": "nutrient given in a vehicle with an uncontrolled dose (e.g. mineral "
                      "water): analysed apart",
    "outside_question": "population or design outside the question",
    "duplicate_report": "another report (full paper, protocol or preliminary abstract) of a "
                        "recorded trial",
}
OVERLAP_STATUSES = ("same_cohort", "possible", "distinct")
ARMS = ("intervention", "control", "single_arm", "contrast")
TIMEPOINTS = ("baseline", "follow_up")
#: Risk-of-bias assessment (``risk_of_bias.csv``): the tool, its domains and judgements.
ROB_TOOLS = ("RoB 2",)  # randomised trials; one tool per evidence base
ROB_DOMAINS = (
    "D1 randomisation process",
    "D2 deviations from intended interventions",
    "D3 missing outcome data",
    "D4 measurement of the outcome",
    "D5 selection of the reported result",
    "overall",
)
ROB_JUDGEMENTS = ("low", "some concerns", "high", "no information")
VALUE_TYPES = (
    "value",  # the level at that time point
    "change",  # change from baseline to follow-up within the arm (follow-up minus baseline)
    "percent_change",  # change as % of baseline within the arm
    "difference",  # between-arm difference (intervention minus control) as reported
)


@dataclass(frozen=True)
class Column:
    """One column of a curated table."""

    name: str
    type: ColumnType
    description: str
    required: bool = False
    unique: bool = False
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Table:
    """A curated table: its file name inside each evidence-base folder and its columns."""

    name: str
    filename: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = field(default=())
    #: Whether every evidence-base folder must hold the file (an optional table that is
    #: absent is read as empty).
    required_file: bool = True

    @property
    def column_names(self) -> list[str]:
        """Names of the columns, in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


PROVENANCE_COLUMNS = (
    Column("source_id", "string", "PMID (digits), DOI (10.x/...) or PMCID (PMC digits) of the "
           "document the numbers were read in (a review, when secondary); for a source with none "
           "of these, url:<address>.", required=True),
    Column("source_url", "string", "URL (or document) where the numbers were read.", required=True),
    Column("locator", "string", "Where in the source: 'abstract', 'table 2', 'figure 3 text', "
           "'review X table 1', ...", required=True),
    Column("source_type", "string", "primary = the trial's own report; secondary = a review's "
           "table or text.", required=True, enum=("primary", "secondary")),
)

STUDIES = Table(
    name="studies",
    filename="studies.csv",
    description="One row per trial report: design, population, intervention, baseline nutrient "
    "status, risk of bias and inclusion decision.",
    primary_key=("study_id",),
    columns=(
        Column("study_id", "string", "Unique key across all evidence bases, e.g. 'prasad1996'.",
               required=True, unique=True, pattern=r"^[a-z][a-z0-9_]*$"),
        Column("evidence_base", "string", "Which question this report informs.", required=True,
               enum=tuple(EVIDENCE_BASES)),
        Column("citation_key", "string", "Key of the report in references.bib.", required=True),
        Column("pmid", "string", "PubMed ID (digits only).", pattern=r"^[0-9]+$"),
        Column("doi", "string", "DOI without the resolver prefix, e.g. 10.1016/...",
               pattern=r"^10\.\S+/\S+$"),
        Column("first_author", "string", "Surname of the first author.", required=True),
        Column("year", "integer", "Year of publication; empty only when no page read shows it "
               "(the study_id then follows the placeholder-key rule in data/CURATION.md).",
               minimum=1900, maximum=2100),
        Column("country", "string", "Country (or countries) where the trial ran."),
        Column("design", "string", "Study design.", required=True, enum=DESIGNS),
        Column("blinding", "string", "Blinding as reported.",
               enum=("double", "single", "open", "unclear")),
        Column("intervention_direction", "string", "'supplementation', or 'depletion' for "
               "controlled nutrient-depletion studies (recorded, analysed separately).",
               required=True, enum=("supplementation", "depletion")),
        Column("population", "string", "Population as described (condition, age, setting).",
               required=True),
        Column("population_group", "string", "Short category for grouping, e.g. "
               "'haemodialysis', 'athletes', 'hashimoto', 'type2_diabetes', 'healthy'."),
        Column("sex", "string", "Sex of participants.", enum=("male", "female", "mixed")),
        Column("age_as_reported", "string", "Age as printed (mean ± SD, range)."),
        Column("n_randomised", "integer", "Participants randomised (or enrolled if not "
               "randomised), all arms.", minimum=1),
        Column("nutrient", "string", "Nutrient given.", required=True, enum=NUTRIENTS),
        Column("nutrient_form", "string", "Chemical form, e.g. 'zinc sulfate', "
               "'selenomethionine', 'magnesium chloride'."),
        Column("dose_as_printed", "string", "Dose exactly as printed, e.g. '220 mg zinc sulfate "
               "twice daily'."),
        Column("dose_value", "number", "Daily dose number as printed (of the compound or the "
               "element, per dose_basis).", minimum=0),
        Column("dose_unit", "string", "Unit of dose_value: mg/day, ug/day, mmol/day, mg/kg/day.",
               enum=("mg/day", "ug/day", "mmol/day", "mg/kg/day")),
        Column("dose_basis", "string", "Whether dose_value is elemental or of the compound.",
               enum=("elemental", "compound", "unclear")),
        Column("duration_weeks", "number", "Intervention duration in weeks (code converts "
               "from duration_as_printed only when this is empty).", minimum=0),
        Column("duration_as_printed", "string", "Duration as printed, e.g. '6 months'."),
        Column("comparator", "string", "Control condition, e.g. 'placebo', 'no treatment', "
               "'levothyroxine alone'; empty for single-arm studies."),
        Column("co_interventions", "string", "Anything given with the nutrient in the "
               "intervention arm (e.g. 'magnesium and vitamin B6'); empty = none reported."),
        Column("background_therapy", "string", "Therapy both arms received, e.g. "
               "'levothyroxine', 'metformin', 'haemodialysis'."),
        Column("baseline_status_value", "number", "Baseline nutrient level (mean or median of "
               "the trial population, as printed).", minimum=0),
        Column("baseline_status_unit", "string", "Unit of baseline_status_value as printed."),
        Column("baseline_status_specimen", "string", "Specimen measured.",
               enum=("serum", "plasma", "whole_blood", "erythrocyte", "hair", "urine", "other")),
        Column("baseline_status_statistic", "string", "What baseline_status_value is.",
               enum=("mean", "median", "geometric_mean")),
        Column("baseline_status_locator", "string", "Where the baseline level was read "
               "(source id + locator)."),
        Column("baseline_status_category", "string", "Status category: judgement from the level "
               "against the documented cut-off, or from the population/region.", required=True,
               enum=STATUS_CATEGORIES),
        Column("baseline_status_justification", "string", "Why that category (cut-off used, "
               "or the source that classifies the population or region).", required=True),
        Column("risk_of_bias", "string", "Overall risk of bias judgement; for a trial with "
               "rows in risk_of_bias.csv it equals that file's overall RoB 2 judgement "
               "(checked by the validator).",
               enum=("low", "some_concerns", "high", "unclear")),
        Column("risk_of_bias_notes", "string", "Reasons: randomisation, blinding, attrition, "
               "completer-only analysis, selective reporting."),
        Column("funding", "string", "Funding source.",
               enum=("industry", "public", "mixed", "none_declared", "unclear")),
        Column("overlap_with", "string", "study_id of another report of the same or an "
               "overlapping cohort (the duplicate is excluded, linked here)."),
        Column("overlap_status", "string", "What the sources say about participants shared "
               "with the report in overlap_with: same_cohort (stated: the same or an overlapping "
               "sample; one of the two is excluded), possible (same group, regimen and period, "
               "overlap neither stated nor excluded; counted once only under the overlap "
               "sensitivity policy), distinct (the sources state different samples).",
               enum=OVERLAP_STATUSES),
        Column("inclusion_status", "string", "Inclusion decision.", required=True,
               enum=INCLUSION_STATUSES),
        Column("reason_code", "string", "Why the record is not pooled or not used: one code "
               "of the controlled vocabulary, empty when included (free-text detail in "
               "inclusion_reason). Codes: "
               + "; ".join(f"{k} = {v}" for k, v in REASON_CODES.items()) + ".",
               enum=tuple(REASON_CODES)),
        Column("inclusion_reason", "string", "Reason for the decision, for readers (required "
               "unless included); curation history belongs in notes."),
        Column("notes", "string", "Pitfalls and anything a reviewer should know."),
    ),
)

RESULTS = Table(
    name="results",
    filename="results.csv",
    description="One row per study x arm x outcome x time point (or per reported between-arm "
    "contrast), numbers exactly as reported, with provenance.",
    primary_key=("study_id", "outcome", "arm", "timepoint", "value_type", "week", "subgroup"),
    columns=(
        Column("study_id", "string", "Key into studies.csv.", required=True),
        Column("outcome", "string", "Outcome measured.", required=True, enum=tuple(OUTCOMES)),
        Column("subgroup", "string", "Subgroup or dose arm label when a trial reports several "
               "(e.g. 'Se 100 ug', 'LT4-treated'); empty for the whole trial."),
        Column("arm", "string", "Which arm the numbers describe: intervention, control, "
               "single_arm (pre/post studies) or contrast (a reported between-arm difference).",
               required=True, enum=ARMS),
        Column("arm_label", "string", "Arm as named in the source."),
        Column("timepoint", "string", "baseline or follow_up (changes and differences are "
               "follow_up).", required=True, enum=TIMEPOINTS),
        Column("week", "number", "Weeks since start for follow_up rows.", minimum=0),
        Column("value_type", "string", "What the numbers describe.", required=True,
               enum=VALUE_TYPES),
        Column("n", "integer", "Participants contributing to these numbers.", minimum=1),
        Column("mean", "number", "Arithmetic mean (or mean change / difference)."),
        Column("sd", "number", "Standard deviation.", minimum=0),
        Column("se", "number", "Standard error of the mean.", minimum=0),
        Column("ci_lower", "number", "Lower confidence limit of the mean (or of the geometric "
               "mean when only that is given)."),
        Column("ci_upper", "number", "Upper confidence limit."),
        Column("ci_level", "number", "Confidence level of the CI, e.g. 0.95.", minimum=0.5,
               maximum=0.999),
        Column("median", "number", "Median."),
        Column("q1", "number", "First quartile."),
        Column("q3", "number", "Third quartile."),
        Column("min", "number", "Minimum."),
        Column("max", "number", "Maximum."),
        Column("geometric_mean", "number", "Geometric mean.", minimum=0),
        Column("p_value", "number", "p-value as printed (upper bound when p_value_qualifier is "
               "'<').", minimum=0, maximum=1),
        Column("p_value_qualifier", "string", "'=' exact, '<' an upper bound, '>' a lower bound.",
               enum=("=", "<", ">")),
        Column("p_value_comparison", "string", "What the p-value tests.",
               enum=("between_arms", "within_arm", "between_arms_change")),
        Column("direction", "string", "Direction reported in words when numbers are missing.",
               enum=("increase", "decrease", "no_change")),
        Column("unit", "string", "Unit exactly as printed (e.g. 'ng/dL', 'nmol/L', 'IU/mL', "
               "'uU/mL'); 'ratio'/'index'/'%' for unitless."),
        Column("spread_as_printed", "string", "The dispersion label as printed, e.g. "
               "'mean ± SD', 'mean ± SEM', '± (unlabelled)', 'median (IQR)'."),
        Column("spread_reading", "string", "Reading of a bare '±' on this row decided by the "
               "trial's printed between-arm p-value (nutrimeta check; evidence in "
               "extraction_notes); empty = the analysis spec's unlabelled_spread default.",
               enum=("sd", "se")),
        Column("subgroup_status_category", "string", "Baseline nutrient status of the "
               "subgroup these numbers describe, when a trial reports strata by baseline status "
               "(overrides the study's category for that stratum).", enum=STATUS_CATEGORIES),
        Column("subgroup_status_justification", "string", "The stratum's definition as printed "
               "with its locator, and the cut-off used for the category."),
        Column("analysis_population", "string", "Who was analysed.",
               enum=("itt", "completers", "per_protocol", "unclear")),
        Column("prepost_correlation", "number", "Pre/post correlation to use for change-score SD "
               "of this row, overriding the analysis default (state where it comes from in "
               "extraction_notes).", minimum=-1, maximum=1),
        *PROVENANCE_COLUMNS,
        Column("extraction_notes", "string", "Pitfalls: SE printed as SD, unit typos, "
               "digitised from a figure, disagreement between sources, etc."),
    ),
)

SYNTHESES = Table(
    name="syntheses",
    filename="syntheses.csv",
    description="Published pooled estimates from systematic reviews, set beside this package's "
    "estimates in the reports.",
    primary_key=("review_id", "outcome", "measure", "subgroup"),
    columns=(
        Column("review_id", "string", "Short key, e.g. 'simental2016'.", required=True,
               pattern=r"^[a-z][a-z0-9_]*$"),
        Column("citation_key", "string", "Key in references.bib.", required=True),
        Column("outcome", "string", "Outcome pooled.", required=True, enum=tuple(OUTCOMES)),
        Column("measure", "string", "Effect measure as published: MD, WMD, SMD, ROM, ...",
               required=True),
        Column("estimate", "number", "Pooled estimate as printed.", required=True),
        Column("ci_lower", "number", "Lower limit as printed."),
        Column("ci_upper", "number", "Upper limit as printed."),
        Column("unit", "string", "Unit of the estimate as printed (empty for SMD)."),
        Column("k", "integer", "Number of trials (or comparisons) pooled.", minimum=1),
        Column("n_participants", "integer", "Participants pooled.", minimum=1),
        Column("i2", "number", "I² in percent as printed.", minimum=0, maximum=100),
        Column("subgroup", "string", "Population subset, e.g. 'deficient at baseline'; empty "
               "for the overall estimate."),
        *PROVENANCE_COLUMNS,
        Column("notes", "string", "Anything needed to read the estimate correctly."),
    ),
)

RISK_OF_BIAS = Table(
    name="risk_of_bias",
    filename="risk_of_bias.csv",
    description="Risk of bias by domain (RoB 2) of the randomised trials: one row per trial x "
    "domain, the five RoB 2 domains and the overall judgement, each with its support and "
    "source. The overall judgement follows the RoB 2 algorithm from the domains (any high -> "
    "high; else any some concerns or no information -> some concerns; all low -> low); "
    "'no information' is a domain judgement only. studies.csv risk_of_bias must agree with "
    "the overall row (some concerns = some_concerns).",
    primary_key=("study_id", "domain"),
    required_file=False,
    columns=(
        Column("study_id", "string", "Key into studies.csv of the same evidence base.",
               required=True),
        Column("tool", "string", "Risk-of-bias tool (one per evidence base).", required=True,
               enum=ROB_TOOLS),
        Column("domain", "string", "RoB 2 domain, or 'overall'.", required=True,
               enum=ROB_DOMAINS),
        Column("judgement", "string", "Judgement for the domain ('no information' where the "
               "sources read say nothing for it; not allowed for 'overall').", required=True,
               enum=ROB_JUDGEMENTS),
        Column("support", "string", "The reason, quoting what the source says (or saying "
               "what the sources read do not report).", required=True),
        Column("source_id", "string", "PMID, DOI, PMCID or url:<address> of the document the "
               "support was read in (a review's risk-of-bias table when secondary).",
               required=True),
        Column("source_locator", "string", "Where in the source: 'abstract', 'methods', "
               "'review X figure 2', ...", required=True),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (STUDIES, RESULTS, SYNTHESES, RISK_OF_BIAS)}
