"""A deterministic generator of realistic daily loan-application batches for the embedded demo.

Why a generator and not a bundled file: the demo and the tests need data on which drift, concept
change and schema breaks can be switched on for chosen days, reproducibly and at any size. Each day
is generated from its own seed (``seed`` + the day's ordinal), so day 7 is the same whether one or
thirty days are generated, and a batch can be regenerated alone.

The target (``defaulted``) comes from a logistic model of the features plus latent noise, so the
signal is real but imperfect: a well-tuned model reaches a ROC AUC around 0.8, never 1.0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

ID_COLUMN = "loan_id"
TIME_COLUMN = "application_date"
TARGET_COLUMN = "defaulted"

NUMERIC_FEATURES: tuple[str, ...] = (
    "age",
    "annual_income",
    "employment_years",
    "loan_amount",
    "term_months",
    "interest_rate",
    "installment",
    "debt_to_income",
    "credit_score",
    "credit_history_years",
    "open_accounts",
    "delinquencies_2y",
    "revolving_utilization",
    "inquiries_6m",
    "months_since_last_delinquency",
    "savings_balance",
)

CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "home_ownership": ("RENT", "MORTGAGE", "OWN", "OTHER"),
    "purpose": (
        "debt_consolidation",
        "credit_card",
        "home_improvement",
        "car",
        "medical",
        "small_business",
        "education",
        "other",
    ),
    "region": ("north", "south", "east", "west", "central"),
    "employment_type": ("salaried", "self_employed", "unemployed", "retired", "student"),
    "channel": ("branch", "online", "broker"),
}
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(CATEGORIES)

_BASE_MIX: Mapping[str, tuple[float, ...]] = {
    "home_ownership": (0.42, 0.38, 0.17, 0.03),
    "purpose": (0.38, 0.2, 0.1, 0.1, 0.05, 0.05, 0.04, 0.08),
    "region": (0.22, 0.24, 0.18, 0.2, 0.16),
    "employment_type": (0.7, 0.13, 0.05, 0.07, 0.05),
    "channel": (0.35, 0.5, 0.15),
}
# Features whose distribution covariate drift changes, directly or through a feature built from one
# (interest_rate from credit_score, debt_to_income from income; months_since_last_delinquency through
# its missing share). At full strength each moves far past the drift thresholds in params.yaml.
COVARIATE_DRIFTED: tuple[str, ...] = (
    "annual_income",
    "credit_score",
    "interest_rate",
    "debt_to_income",
    "open_accounts",
    "delinquencies_2y",
    "revolving_utilization",
    "inquiries_6m",
    "months_since_last_delinquency",
    "home_ownership",
    "purpose",
    "employment_type",
    "channel",
)
# Where covariate drift moves the categorical mixes (same order as CATEGORIES).
_DRIFT_MIX: Mapping[str, tuple[float, ...]] = {
    "home_ownership": (0.6, 0.25, 0.1, 0.05),
    "purpose": (0.25, 0.25, 0.05, 0.05, 0.1, 0.18, 0.07, 0.05),
    "region": (0.22, 0.24, 0.18, 0.2, 0.16),
    "employment_type": (0.55, 0.2, 0.12, 0.05, 0.08),
    "channel": (0.1, 0.8, 0.1),
}
_EFFECTS: Mapping[str, Mapping[str, float]] = {
    "purpose": {
        "debt_consolidation": 0.15,
        "credit_card": 0.1,
        "home_improvement": -0.1,
        "car": -0.2,
        "medical": 0.3,
        "small_business": 0.6,
        "education": 0.25,
        "other": 0.2,
    },
    "employment_type": {"salaried": 0.0, "self_employed": 0.2, "unemployed": 0.8, "retired": 0.1, "student": 0.4},
    "home_ownership": {"RENT": 0.2, "MORTGAGE": -0.1, "OWN": -0.2, "OTHER": 0.1},
    "region": {"north": 0.0, "south": 0.0, "east": 0.0, "west": 0.0, "central": 0.0},
}
# Under concept drift the same applicants default for other reasons: region starts to matter.
_CONCEPT_REGION: Mapping[str, float] = {"north": -0.4, "south": 0.6, "east": 0.0, "west": -0.2, "central": 0.3}


class SchemaBreak(StrEnum):
    """Ways a real upstream system breaks a batch; the contract must catch each of them."""

    DROP_COLUMN = "drop_column"
    RENAME_COLUMN = "rename_column"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_CATEGORY = "unknown_category"
    NULL_TARGET = "null_target"


@dataclass(frozen=True)
class DayChanges:
    """What to inject into one day: strengths in [0, 1] and an optional schema break."""

    covariate_drift: float = 0.0
    concept_drift: float = 0.0
    schema_break: SchemaBreak | None = None

    def __post_init__(self) -> None:
        for name in ("covariate_drift", "concept_drift"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")


NO_CHANGES = DayChanges()


def _rng_for_day(seed: int, day: dt.date) -> np.random.Generator:
    return np.random.default_rng([seed, day.toordinal()])


def _mix(base: tuple[float, ...], drifted: tuple[float, ...], strength: float) -> np.ndarray:
    weights = (1 - strength) * np.asarray(base, dtype="float64") + strength * np.asarray(drifted, dtype="float64")
    normalised: np.ndarray = weights / weights.sum()
    return normalised


def _with_missing(values: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    out = values.astype("float64", copy=True)
    out[rng.random(out.shape[0]) < rate] = np.nan
    return out


def _categorical(name: str, rows: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    weights = _mix(_BASE_MIX[name], _DRIFT_MIX[name], strength)
    drawn: np.ndarray = rng.choice(np.asarray(CATEGORIES[name], dtype=object), size=rows, p=weights)
    return drawn


def _effect(name: str, values: np.ndarray, effects: Mapping[str, float]) -> np.ndarray:
    return pd.Series(values, dtype="object").map(effects).fillna(0.0).to_numpy(dtype="float64")


def generate_day(day: dt.date, rows: int, seed: int, changes: DayChanges = NO_CHANGES) -> pd.DataFrame:
    """One day's batch of loan applications with the outcome known (``defaulted``)."""
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = _rng_for_day(seed, day)
    shift = changes.covariate_drift

    cats = {name: _categorical(name, rows, shift, rng) for name in CATEGORIES}
    age = np.clip(rng.normal(41, 12, rows), 18, 85).round()
    income = np.clip(rng.lognormal(np.log(52_000 * (1 - 0.3 * shift)), 0.55, rows), 4_000, 2_000_000)
    employment_years = np.clip(rng.gamma(2.0, 3.5, rows), 0, 50).round(1)
    loan_amount = np.clip(rng.lognormal(np.log(12_000), 0.7, rows), 1_000, 50_000).round(-1)
    term = rng.choice(np.array([12, 24, 36, 48, 60]), size=rows, p=[0.1, 0.2, 0.4, 0.15, 0.15])
    credit_score = np.clip(rng.normal(690 - 45 * shift, 60, rows), 300, 850).round()
    rate = np.clip(26 - 0.03 * (credit_score - 500) + rng.normal(0, 2.0, rows), 3, 30).round(2)
    monthly_rate = rate / 1200
    installment = (loan_amount * monthly_rate / (1 - (1 + monthly_rate) ** (-term))).round(2)
    other_debt = rng.gamma(2.0, 0.08, rows)
    dti = np.clip(other_debt + 12 * installment / income, 0, 1.5).round(4)
    history = np.clip(age - 18 - rng.gamma(2.0, 2.0, rows), 0, 60).round(1)
    open_accounts = rng.poisson(6 + 2 * shift, rows)
    delinquencies = rng.poisson(0.25 + 0.2 * shift, rows)
    utilization = np.clip(rng.beta(2.0, 3.0, rows) + 0.15 * shift, 0, 1.5).round(4)
    inquiries = rng.poisson(1.0 + 1.5 * shift, rows)
    since_delinquency = np.where(delinquencies > 0, rng.integers(1, 24, rows), np.nan)
    savings = np.clip(rng.lognormal(np.log(6_000), 1.1, rows), 0, 5_000_000).round(2)

    drift = changes.concept_drift
    logit = (
        -2.3
        - (0.012 * (1 - 1.5 * drift)) * (credit_score - 680)
        + (2.0 + 2.0 * drift) * (dti - 0.35)
        + 1.2 * (utilization - 0.5)
        + 0.35 * delinquencies
        + 0.15 * inquiries
        - 0.25 * np.log(income / 50_000)
        + 0.04 * (rate - 12)
        + 0.01 * (term - 36)
        + 0.8 * ((dti > 0.5) & (credit_score < 620))
        - 0.01 * np.minimum(employment_years, 20)
        + _effect("purpose", cats["purpose"], _EFFECTS["purpose"])
        + _effect("employment_type", cats["employment_type"], _EFFECTS["employment_type"])
        + _effect("home_ownership", cats["home_ownership"], _EFFECTS["home_ownership"])
        + drift * _effect("region", cats["region"], _CONCEPT_REGION)
        + rng.normal(0, 0.9, rows)
    )
    defaulted = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")

    for name, rate_missing in (("employment_type", 0.01), ("channel", 0.02)):
        column = cats[name].copy()
        column[rng.random(rows) < rate_missing] = None
        cats[name] = column

    frame = pd.DataFrame(
        {
            ID_COLUMN: np.arange(rows, dtype="int64") + day.toordinal() * 1_000_000,
            TIME_COLUMN: pd.Timestamp(day),
            "age": age.astype("int64"),
            "annual_income": _with_missing(income.round(2), 0.03, rng),
            "employment_years": _with_missing(employment_years, 0.06, rng),
            "loan_amount": loan_amount,
            "term_months": term.astype("int64"),
            "interest_rate": rate,
            "installment": installment,
            "debt_to_income": dti,
            "credit_score": credit_score.astype("int64"),
            "credit_history_years": history,
            "open_accounts": open_accounts.astype("int64"),
            "delinquencies_2y": delinquencies.astype("int64"),
            "revolving_utilization": utilization,
            "inquiries_6m": inquiries.astype("int64"),
            "months_since_last_delinquency": since_delinquency,
            "savings_balance": _with_missing(savings, 0.05, rng),
            **{name: pd.array(values, dtype="str") for name, values in cats.items()},
            TARGET_COLUMN: defaulted,
        }
    )
    frame[TIME_COLUMN] = frame[TIME_COLUMN].astype("datetime64[ms]")
    if changes.schema_break is not None:
        frame = break_schema(frame, changes.schema_break, rng)
    return frame


def break_schema(frame: pd.DataFrame, kind: SchemaBreak, rng: np.random.Generator) -> pd.DataFrame:
    """Damage a clean batch the way upstream systems do; used to prove the contract catches it."""
    broken = frame.copy()
    if kind is SchemaBreak.DROP_COLUMN:
        return broken.drop(columns=["credit_score"])
    if kind is SchemaBreak.RENAME_COLUMN:
        return broken.rename(columns={"annual_income": "income"})
    if kind is SchemaBreak.WRONG_TYPE:
        broken["annual_income"] = broken["annual_income"].map(lambda v: f"{v:,.2f} USD", na_action="ignore")
        return broken
    rows = rng.random(len(broken)) < 0.05
    rows[0] = True  # at least one row is always damaged, even in tiny batches
    if kind is SchemaBreak.OUT_OF_RANGE:
        broken.loc[rows, "credit_score"] = 9_999
    elif kind is SchemaBreak.UNKNOWN_CATEGORY:
        broken.loc[rows, "region"] = "atlantis"
    elif kind is SchemaBreak.NULL_TARGET:
        broken[TARGET_COLUMN] = broken[TARGET_COLUMN].astype("float64")
        broken.loc[rows, TARGET_COLUMN] = np.nan
    return broken


def generate_days(
    start: dt.date,
    days: int,
    rows_per_day: int,
    seed: int,
    changes: Mapping[int, DayChanges] | None = None,
) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Yield ``(day, batch)`` for consecutive days; ``changes`` maps a 0-based day index to what to inject."""
    plan = changes or {}
    for index in range(days):
        day = start + dt.timedelta(days=index)
        yield day, generate_day(day, rows_per_day, seed, plan.get(index, NO_CHANGES))
