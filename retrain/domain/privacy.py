"""Sensitive columns: which they are, and the salted tokens their values become outside the data store.

A column is sensitive when the contract says so (``meta.columns.<name>.sensitive: true``) or when
params.yaml lists it (``privacy.sensitive``): the union of both. The data store (batches, the DVC
snapshot, quarantine, predictions) keeps raw rows; everything else (the feature spec, the reference
profile, slices, drift and gate reports, plots, validation reports) sees a sensitive text column only
as tokens: a keyed hash per column (``tok_`` and 10 hex digits), the key derived from a secret salt and
the column's name, so the same value gives the same token in one column of one installation, and
nobody without the salt can test a guess. Missing values stay missing.

Only text columns the model or the gate reads are tokenised (categorical features and categorical
slice columns): a sensitive number stays a number for the model (its profile drops the extremes,
:func:`retrain.domain.profile.numeric_profile`), and the id column is never tokenised (it joins rows
in the data store and never reaches a report).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from retrain.domain.errors import RetrainError
from retrain.domain.features import FeatureSpec, unique_texts
from retrain.domain.profile import OTHER, NumericProfile, ReferenceProfile
from retrain.domain.rows import Rows
from retrain.domain.splitting import TimeSplit

#: The environment variable that holds the salt (else a file under RETRAIN_HOME, see the adapter).
SALT_ENV: Final = "RETRAIN_PRIVACY_SALT"
TOKEN_PREFIX: Final = "tok_"
#: The input example's stand-in for a sensitive value.
PLACEHOLDER: Final = "<sensitive>"


class PrivacyError(RetrainError):
    """A model's tokens cannot be reproduced here (no salt, or another salt than it was trained with)."""


def salt_id(salt: bytes) -> str:
    """What identifies a salt without revealing it: 12 hex digits of sha256 of a value derived from it."""
    derived = hmac.new(salt, b"retrain salt id", hashlib.sha256).digest()
    return hashlib.sha256(derived).hexdigest()[:12]


#: The flag that lets a training (or ``retrain fit``) key tokens with a new salt on purpose.
NEW_SALT_FLAG: Final = "--new-privacy-salt"


def training_salt_problem(
    current: str | None, recorded: Sequence[tuple[str, str]], new_salt: bool, where: str
) -> str | None:
    """Why a training may not tokenise under this salt (``current``: its id, None when there is none
    and one would be created), given the salt ids registered versions record (``(version, salt id)``,
    oldest first). A lost or changed salt would otherwise leave every registered model unscorable and
    every comparison failed: restore it, or start again under a new salt on purpose (``new_salt``)."""
    if new_salt or not recorded or any(current == known for _, known in recorded):
        return None
    version, known = recorded[-1]
    what = "there is no privacy salt" if current is None else f"the privacy salt here (id {current}) is another one"
    return (
        f"{what}, but registered versions were trained under one: restore the salt ({SALT_ENV} or {where}) "
        f"that trained v{version} (salt id {known}); to train under a new salt on purpose (every registered "
        f"model then cannot be scored here, and the gate fails its comparison), pass {NEW_SALT_FLAG}"
    )


def column_key(salt: bytes, column: str) -> str:
    """The 16-character hash key of one column (pandas' hash takes 16 bytes): HMAC(salt, name)."""
    return hmac.new(salt, f"column:{column}".encode(), hashlib.sha256).hexdigest()[:16]


def tokenise_values(values: pd.Series, key: str) -> pd.Series:
    """A column's values as tokens, missing left missing. The text of each distinct value is hashed
    once (as :func:`retrain.domain.features.category_text` reads it, so 3 and 3.0 agree), then
    spread back over the rows: linear in rows, vectorised."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:
        return pd.Series(np.full(len(values), np.nan, dtype="object"), index=values.index, dtype="object")
    texts = pd.Series(unique_texts(uniques), dtype="object")
    hashed = pd.util.hash_pandas_object(texts, index=False, encoding="utf8", hash_key=key, categorize=False)
    tokens = np.asarray([f"{TOKEN_PREFIX}{value:016x}"[:14] for value in hashed.to_numpy()], dtype="object")
    spread = np.append(tokens, np.nan).astype("object")[codes]
    return pd.Series(spread, index=values.index, dtype="object")


@dataclass(frozen=True)
class Tokeniser:
    """Turns the values of ``columns`` into tokens, one key per column (never written anywhere)."""

    columns: tuple[str, ...]
    salt_id: str | None
    _keys: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def none(cls) -> Tokeniser:
        return cls((), None)

    @classmethod
    def of(cls, salt: bytes, columns: Sequence[str]) -> Tokeniser:
        return cls(tuple(columns), salt_id(salt), {name: column_key(salt, name) for name in columns})

    def __bool__(self) -> bool:
        return bool(self.columns)

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``frame`` with its sensitive columns as tokens (the frame itself without any)."""
        present = [name for name in self.columns if name in frame.columns]
        if not present:
            return frame
        replaced = {name: tokenise_values(frame[name], self._keys[name]) for name in present}
        return frame.assign(**replaced)

    def rows(self, rows: Rows) -> Rows:
        if not self.columns:
            return rows
        return self.frame(rows) if isinstance(rows, pd.DataFrame) else TokenisedRows(rows, self)


@dataclass(frozen=True)
class TokenisedRows:
    """Rows left in storage, tokenised as they are read (a column or a piece at a time)."""

    stored: Any  # a StoredRows
    tokeniser: Tokeniser

    @property
    def column_names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = self.stored.column_names
        return names

    def __len__(self) -> int:
        return len(self.stored)

    def column(self, name: str) -> pd.Series:
        values: pd.Series = self.stored.column(name)
        if name in self.tokeniser.columns:
            return tokenise_values(values, self.tokeniser._keys[name])
        return values

    def pieces(self, piece_rows: int) -> Iterator[pd.DataFrame]:
        for piece in self.stored.pieces(piece_rows):
            yield self.tokeniser.frame(piece)


def tokenise_split(split: TimeSplit, tokeniser: Tokeniser) -> TimeSplit:
    """Every part of a split with its sensitive columns as tokens (the split itself when none are)."""
    if not tokeniser:
        return split
    return replace(
        split,
        train=tokeniser.rows(split.train),
        validation=tokeniser.frame(split.validation),
        holdout=tokeniser.frame(split.holdout),
        tokenised=tokeniser.columns,
        salt_id=tokeniser.salt_id,
        raw_holdout=split.holdout,
    )


def check_salt(spec_salt_id: str | None, tokeniser: Tokeniser, who: str) -> None:
    """Refuse to read rows for a model whose tokens came from another salt than this environment's."""
    if spec_salt_id is not None and spec_salt_id != tokeniser.salt_id:
        raise PrivacyError(
            f"{who} was trained with privacy salt {spec_salt_id}, this environment's is "
            f"{tokeniser.salt_id or 'missing'}: set {SALT_ENV} to the salt it was trained with "
            "(or retrain it under this one)"
        )


def synthetic_example(profile: ReferenceProfile, spec: FeatureSpec, sensitive: Iterable[str]) -> pd.DataFrame:
    """A model's input example, made up from its reference profile rather than copied from rows:
    each numeric feature's median, each categorical feature's most frequent category, and a
    placeholder (missing for a number, :data:`PLACEHOLDER` for text) in every sensitive one."""
    hidden = set(sensitive) | set(spec.tokenised)
    numeric = {item.name: item for item in profile.numeric}
    categorical = {item.name: item for item in profile.categorical}
    row: dict[str, Any] = {}
    for name in spec.numeric:
        row[name] = np.nan if name in hidden or name not in numeric else _median(numeric[name])
    for name in spec.categorical:
        counts = (
            {key: value for key, value in categorical[name].counts.items() if key != OTHER}
            if (name in categorical)
            else {}
        )
        row[name] = PLACEHOLDER if name in hidden or not counts else max(counts, key=lambda key: counts[key])
    return pd.DataFrame([row], columns=list(spec.columns))


def _median(profile: NumericProfile) -> float:
    """The reference's median as its profile knows it: the first edge with half the present values at or below."""
    counts = np.asarray(profile.counts, dtype="float64")
    if not profile.edges or counts.sum() == 0:
        return float("nan")
    position = int(np.searchsorted(np.cumsum(counts), counts.sum() / 2))
    return float(profile.edges[min(position, len(profile.edges) - 1)])
