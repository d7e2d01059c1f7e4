"""How raw columns become the all-numeric matrix the model sees.

Categorical columns are encoded as integer codes of a category list fixed at training time and
declared to XGBoost as categorical (``feature_types='c'``): the model keeps native categorical splits,
its input stays purely numeric (so the MLflow pyfunc flavour and its signature work), and scoring
uses the very same list, stored with the model. Unknown or missing categories become NaN, which
XGBoost routes down the learned default branch instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FeatureSpec:
    """Feature order, kinds and the category list of every categorical feature."""

    numeric: tuple[str, ...]
    categories: tuple[tuple[str, tuple[str, ...]], ...]

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
        return {
            "numeric": list(self.numeric),
            "categorical": [{"name": name, "categories": list(cats)} for name, cats in self.categories],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            numeric=tuple(data["numeric"]),
            categories=tuple((item["name"], tuple(item["categories"])) for item in data["categorical"]),
        )


def build_feature_spec(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> FeatureSpec:
    """Fix the category lists from the training rows (sorted, so the spec is deterministic)."""
    missing = [c for c in (*numeric, *categorical) if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns missing from the data: {missing}")
    categories = tuple((name, tuple(sorted(str(v) for v in frame[name].dropna().unique()))) for name in categorical)
    return FeatureSpec(numeric=tuple(numeric), categories=categories)


def encode_features(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The model matrix: float64 columns in spec order, categoricals as codes (NaN when unknown)."""
    encoded: dict[str, np.ndarray] = {}
    for name in spec.numeric:
        encoded[name] = pd.to_numeric(frame[name], errors="raise").to_numpy(dtype="float64", na_value=np.nan)
    for name, cats in spec.categories:
        codes = pd.Categorical(frame[name].astype("str").where(frame[name].notna()), categories=list(cats)).codes
        column = codes.astype("float64")
        column[codes < 0] = np.nan
        encoded[name] = column
    return pd.DataFrame(encoded, index=frame.index)
