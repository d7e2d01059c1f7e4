"""Which columns are sensitive, and the copies of the contract that leave the data store.

A column is sensitive when the contract says so (``meta.columns.<name>.sensitive: true``) or when
params.yaml lists it (``privacy.sensitive``): the union of both (:func:`retrain.domain.settings.load_settings`).
What becomes of their values is :mod:`retrain.domain.privacy`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pandas as pd

#: What a report writes instead of a sensitive value (a validation failure's values, a contract's value set).
WITHHELD: Final = "values withheld: sensitive column"


def tokenised_columns(
    sensitive: Iterable[str],
    categorical_features: Sequence[str],
    categorical_slices: Sequence[str],
    id_column: str | None,
    numeric_features: Sequence[str] = (),
) -> tuple[str, ...]:
    """The sensitive columns that become tokens: text the model or the gate reads (never the id, never
    a numeric feature: the model reads its numbers, even when the gate also slices by its values)."""
    wanted = set(sensitive) - ({id_column} if id_column else set()) - set(numeric_features)
    order = dict.fromkeys([*categorical_features, *categorical_slices])
    return tuple(name for name in order if name in wanted)


def raw_slice_problems(
    sensitive: Iterable[str],
    categorical_slices: Sequence[str],
    id_column: str | None,
    numeric_features: Sequence[str],
) -> list[str]:
    """Why a sensitive column may not be a categorical slice: the id and numeric features are never
    tokenised (the model reads their numbers), so their slices would be named by raw values
    (``age=37``) in gate reports, results, notifications and plots. Bins whose edges are the user's
    (``gate.slices.numeric_bins``) name no value."""
    hidden = set(sensitive)
    problems = []
    for name in categorical_slices:
        if name not in hidden:
            continue
        if name == id_column:
            what = "the id column"
        elif name in numeric_features:
            what = "a numeric feature (never tokenised)"
        else:
            continue
        problems.append(
            f"key 'gate.slices.categorical': column '{name}' is sensitive and {what}, so its slices would be "
            f"named by raw values; remove it from gate.slices.categorical (a numeric column may be sliced by "
            f"gate.slices.numeric_bins, whose edges are yours)"
        )
    return problems


# ---- the contract's declaration, and copies of it that leave the store -------------------------------


def contract_sensitive(contract: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns a contract declares sensitive: ``meta.columns.<name>.sensitive: true``."""
    meta = contract.get("meta")
    columns = meta.get("columns") if isinstance(meta, Mapping) else None
    if not isinstance(columns, Mapping):
        return ()
    return tuple(
        str(name) for name, entry in columns.items() if isinstance(entry, Mapping) and entry.get("sensitive") is True
    )


#: Expectation arguments that name columns (kept in a redacted copy), and those that are no values.
_COLUMN_KWARGS: Final = ("column", "column_A", "column_B", "column_list")
_KEPT_KWARGS: Final = (*_COLUMN_KWARGS, "type_", "mostly")


def mentions_sensitive(kwargs: Mapping[str, Any], sensitive: Iterable[str]) -> bool:
    """Whether an expectation is about a sensitive column: its ``column``, ``column_A``/``column_B``,
    ``column_list`` or ``row_condition`` names one. Then every other argument may hold its values
    (value sets, quantile ranges, partitions, value pairs, the condition), and so may its failures."""
    hidden = set(sensitive)
    if not hidden:
        return False
    named: set[str] = set()
    for key in _COLUMN_KWARGS:
        value = kwargs.get(key)
        if isinstance(value, str):
            named.add(value)
        elif isinstance(value, (list, tuple)):
            named.update(str(item) for item in value)
    if named & hidden:
        return True
    condition = kwargs.get("row_condition")
    return isinstance(condition, str) and any(
        re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", condition) for name in hidden
    )


def redacted_contract(contract: Mapping[str, Any], sensitive: Iterable[str]) -> dict[str, Any]:
    """A copy of the contract to log beside a model: every argument of an expectation about a
    sensitive column (:func:`mentions_sensitive`) but the column names, ``type_`` and ``mostly``
    replaced by a note. The contract hash is the real file's."""
    hidden = set(sensitive)
    copy: dict[str, Any] = {key: value for key, value in contract.items() if key != "expectations"}
    redacted = []
    changed = False
    for expectation in contract.get("expectations", []):
        kwargs = dict(expectation.get("kwargs", {})) if isinstance(expectation, Mapping) else {}
        if mentions_sensitive(kwargs, hidden):
            for key in kwargs:
                if key not in _KEPT_KWARGS:
                    kwargs[key] = WITHHELD
                    changed = True
            redacted.append({**expectation, "kwargs": kwargs})
        else:
            redacted.append(expectation)
    copy["expectations"] = redacted
    if changed:
        copy["meta"] = {**dict(copy.get("meta") or {}), "redacted": "values of sensitive columns withheld"}
    return copy


def is_redacted(contract: Mapping[str, Any]) -> bool:
    meta = contract.get("meta")
    return isinstance(meta, Mapping) and "redacted" in meta


# ---- what retrain init proposes ---------------------------------------------------------------------

_PERSONAL_NAME = re.compile(
    r"(^|_)(id|uuid|guid|name|first_?name|last_?name|surname|full_?name|e_?mail|mail|phone|mobile|tel|telephone"
    r"|dob|birth|birth_?date|date_?of_?birth|birthday|ssn|social_?security|passport|national_?id|tax_?id|iban"
    r"|account_?number|card_?number|address|street|zip|zip_?code|postcode|postal_?code|ip|ip_?address)($|_)"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")


def _name_reason(column: str) -> str | None:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column).lower().replace("-", "_").replace(" ", "_")
    if _PERSONAL_NAME.search(snake):
        return "its name looks personal"
    return None


def _value_reason(values: pd.Series) -> str | None:
    present = values.dropna()
    if present.empty or not (pd.api.types.is_object_dtype(present) or pd.api.types.is_string_dtype(present)):
        return None
    sample = present.astype(str).head(200)
    if sample.str.match(_EMAIL).mean() >= 0.5:
        return "its values look like e-mail addresses"
    digits = sample.str.count(r"\d")
    if (sample.str.match(_PHONE) & (digits >= 7)).mean() >= 0.5:
        return "its values look like phone numbers"
    return None


def propose_sensitive(sample: pd.DataFrame) -> dict[str, str]:
    """Columns of a sample whose names or values look personal, each with why (for the user to confirm)."""
    proposed: dict[str, str] = {}
    for column in sample.columns:
        reason = _name_reason(str(column)) or _value_reason(sample[column])
        if reason is not None:
            proposed[str(column)] = reason
    return proposed
