"""How raw columns become the all-numeric matrix the model sees.

Categorical columns are encoded as integer codes of a category list fixed at training time and
declared to XGBoost as categorical (``feature_types='c'``): the model keeps native categorical splits,
its input stays purely numeric (so the MLflow pyfunc flavour and its signature work), and scoring
uses the very same list, stored with the model. Unknown or missing categories become NaN, which
XGBoost routes down the learned default branch instead of failing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retrain.domain.errors import InputError
from retrain.domain.rows import Rows, column_of, missing_columns


@dataclass(frozen=True)
class FeatureSpec:
    """Feature order, kinds and the category list of every categorical feature."""

    numeric: tuple[str, ...]
    categories: tuple[tuple[str, tuple[str, ...]], ...]
    #: sensitive columns the model reads as tokens, and the id of the salt that keyed them
    #: (:mod:`retrain.domain.privacy`); every reader of rows for this model tokenises them so
    tokenised: tuple[str, ...] = ()
    salt_id: str | None = None

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.categories)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @property
    def feature_types(self) -> list[str]:
        """XGBoost feature types: 'q' quantitative, 'c' categorical, in column order."""
        return ["q"] * len(self.numeric) + ["c"] * len(self.categories)

    def to_dict(self) -> dict[str, Any]:
        # A list, not a mapping: YAML writers sort mapping keys, and the column order is the model's.
        data: dict[str, Any] = {
            "numeric": list(self.numeric),
            "categorical": [{"name": name, "categories": list(cats)} for name, cats in self.categories],
        }
        if self.tokenised:  # only then: a model without sensitive columns keeps the spec it always had
            data["privacy"] = {"tokenised": list(self.tokenised), "salt_id": self.salt_id}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        privacy = data.get("privacy") or {}
        return cls(
            numeric=tuple(data["numeric"]),
            categories=tuple((item["name"], tuple(item["categories"])) for item in data["categorical"]),
            tokenised=tuple(privacy.get("tokenised", ())),
            salt_id=privacy.get("salt_id"),
        )


#: A whole number written as a float ("3.0", "-2.00"): what an integer category becomes when its
#: column also holds a missing value (pandas reads it as float), never what the value means.
_WHOLE_FLOAT_TEXT = re.compile(r"^(-?\d+)\.0+$")


def category_text(values: pd.Series) -> pd.Series:
    """A categorical column as the text its categories are matched by (missing stays missing).

    Categories are matched as text, so the same category must read the same whichever dtype a file
    gave its column: an integer column with a gap is read as float, and 3 would become "3.0" and no
    longer match the "3" the model was trained on (it would be scored as unknown). Whole floats are
    written as integers; any other value is its ``str``.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # the text of each distinct value, once
    texts = unique_texts(uniques)
    return pd.Series(np.append(texts, np.nan).astype("object")[codes], index=values.index, dtype="object")


def unique_texts(uniques: pd.Index | np.ndarray) -> np.ndarray:
    texts = np.empty(len(uniques), dtype="object")  # a loop over distinct values: few, and no pandas overhead
    for position, value in enumerate(uniques):
        text = str(value)
        texts[position] = _WHOLE_FLOAT_TEXT.sub(r"\1", text) if text.endswith("0") else text
    return texts


@functools.lru_cache(maxsize=256)
def _known_index(categories: tuple[str, ...]) -> pd.Index:
    """A spec's categories as text, looked up by position: built once per spec, not per prediction."""
    index: pd.Index = pd.Index(unique_texts(np.asarray(categories, dtype="object")), dtype="object")
    return index


def category_codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    """Each value's position among ``categories`` (as :func:`category_text` reads both), -1 when
    missing or unknown. Costs one hash pass over the rows plus work per distinct value, so a
    one-row prediction and a million-row batch both pay only for what they hold."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    positions = (
        _known_index(categories).get_indexer(pd.Index(unique_texts(uniques))) if len(uniques) else np.array([], "intp")
    )
    lookup: np.ndarray = np.append(positions, -1)
    result: np.ndarray = lookup[codes]
    return result


def build_feature_spec(frame: Rows, numeric: Sequence[str], categorical: Sequence[str]) -> FeatureSpec:
    """Fix the category lists from the training rows (sorted, so the spec is deterministic); stored
    rows are read a categorical column at a time."""
    missing = missing_columns(frame, [*numeric, *categorical])
    if missing:
        raise ValueError(f"feature columns missing from the data: {missing}")
    categories = tuple(
        (name, tuple(sorted(category_text(column_of(frame, name)).dropna().unique()))) for name in categorical
    )
    return FeatureSpec(numeric=tuple(numeric), categories=categories)


def numeric_column(values: pd.Series, name: str) -> np.ndarray:
    """A numeric feature as float64, or an error naming the column and how many values are not
    numbers, never the values themselves (the column may be sensitive, and this message reaches logs,
    a failed run's state, notifications and persisted results)."""
    numbers = pd.to_numeric(values, errors="coerce")
    unparsable = int((values.notna() & numbers.isna()).sum())
    if unparsable:
        raise InputError(
            f"numeric feature '{name}': {unparsable} value(s) are not numbers (values withheld: the column may "
            "be sensitive); validate the batch against the contract to find the rows"
        )
    return numbers.to_numpy(dtype="float64", na_value=np.nan)


def encode_features(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The model matrix: float64 columns in spec order, categoricals as codes (NaN when unknown)."""
    encoded: dict[str, np.ndarray] = {}
    for name in spec.numeric:
        encoded[name] = numeric_column(frame[name], name)
    for name, cats in spec.categories:
        # a spec written before category_text may list "3.0": read it the same way (same codes, same order)
        codes = category_codes(frame[name], cats)
        column = codes.astype("float64")
        column[codes < 0] = np.nan
        encoded[name] = column
    return pd.DataFrame(encoded, index=frame.index)
