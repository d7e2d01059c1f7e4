"""Sensitive columns: declaration, salted tokens, the salt, what leaves the store (issue 18, points 1-2)."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.adapters import privacy_salt
from retrain.application.evaluation import CHAMPION_COMPARISON, judge
from retrain.application.models import model_tokens
from retrain.domain.evidence import TrainingSettings, training_params_hash
from retrain.domain.features import FeatureSpec, build_feature_spec
from retrain.domain.lifecycle import canonical_hash
from retrain.domain.privacy import (
    NEW_SALT_FLAG,
    PLACEHOLDER,
    SALT_ENV,
    PrivacyError,
    Tokeniser,
    column_key,
    salt_id,
    synthetic_example,
    tokenise_values,
    training_salt_problem,
)
from retrain.domain.profile import build_profile, numeric_profile
from retrain.domain.sensitive import (
    WITHHELD,
    contract_sensitive,
    is_redacted,
    propose_sensitive,
    redacted_contract,
)
from retrain.domain.settings import SettingsError, load_settings, parse_settings
from retrain.domain.validation import ExpectationFailure, withhold_values

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params.yaml"
SALT = b"a test salt, never a real one"


# ---- tokens ------------------------------------------------------------------------------------------


def test_tokens_are_deterministic_keyed_per_column_and_missing_stays_missing():
    values = pd.Series(["north", "south", None, "north", np.nan], index=[10, 11, 12, 13, 14])
    tokens = tokenise_values(values, column_key(SALT, "region"))
    assert list(tokens.index) == [10, 11, 12, 13, 14]
    assert tokens[10] == tokens[13] != tokens[11]
    assert tokens[10].startswith("tok_") and len(tokens[10]) == 14 and int(tokens[10][4:], 16) >= 0
    assert tokens.isna().tolist() == [False, False, True, False, True]
    again = tokenise_values(values, column_key(SALT, "region"))
    pd.testing.assert_series_equal(tokens, again)
    # another column, or another salt: other tokens for the same value
    assert tokenise_values(values, column_key(SALT, "city"))[10] != tokens[10]
    assert tokenise_values(values, column_key(b"another salt", "region"))[10] != tokens[10]


def test_a_value_has_one_token_whatever_its_dtype():
    key = column_key(SALT, "grade")
    assert tokenise_values(pd.Series([3, 4]), key).tolist() == tokenise_values(pd.Series([3.0, 4.0]), key).tolist()
    assert tokenise_values(pd.Series([None, None]), key).isna().all()


def test_the_tokeniser_touches_only_its_columns_and_the_frame_it_was_given_stays_raw():
    frame = pd.DataFrame({"region": ["north", "east"], "amount": [1.0, 2.0]})
    tokeniser = Tokeniser.of(SALT, ["region", "absent"])
    tokenised = tokeniser.frame(frame)
    assert tokenised["region"].str.startswith("tok_").all() and tokenised["amount"].tolist() == [1.0, 2.0]
    assert frame["region"].tolist() == ["north", "east"]
    assert Tokeniser.none().frame(frame) is frame
    assert tokeniser.salt_id == salt_id(SALT) and len(salt_id(SALT)) == 12
    assert SALT.hex() not in salt_id(SALT) and "a test salt" not in repr(tokeniser)


def test_tokenising_hashes_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch):
    values = pd.Series(np.random.default_rng(0).integers(0, 50_000, 400_000)).astype(str)
    hashed: list[int] = []
    real = pd.util.hash_pandas_object

    def counting(texts: pd.Series, **kwargs: object) -> pd.Series:
        hashed.append(len(texts))
        return real(texts, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pd.util, "hash_pandas_object", counting)
    tokens = tokenise_values(values, column_key(SALT, "customer"))
    assert hashed == [values.nunique()]  # one vectorised call over the distinct values, not the rows
    assert tokens.nunique() == values.nunique() and len(tokens) == len(values)


# ---- the salt ----------------------------------------------------------------------------------------


def test_reading_the_salt_never_creates_it(tmp_path: Path):
    assert privacy_salt.read_salt(tmp_path, {}) is None
    assert not (tmp_path / "privacy").exists()
    with pytest.raises(PrivacyError) as raised:
        privacy_salt.require_salt(tmp_path, {})
    assert SALT_ENV in str(raised.value) and str(tmp_path / "privacy" / "salt") in str(raised.value)


def test_creating_the_salt_writes_it_for_the_operator_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(SALT_ENV, raising=False)
    created = privacy_salt.create_salt(tmp_path)
    path = tmp_path / "privacy" / "salt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert privacy_salt.read_salt(tmp_path) == created == privacy_salt.create_salt(tmp_path)  # kept, never replaced
    # the environment wins over the file
    assert privacy_salt.read_salt(tmp_path, {SALT_ENV: "from-the-stack"}) == b"from-the-stack"


def test_a_lost_or_changed_salt_is_never_replaced_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(SALT_ENV, raising=False)
    recorded = [("1", "aaaaaaaaaaaa"), ("2", salt_id(SALT))]
    assert training_salt_problem(None, [], False, "here") is None  # a first model creates it
    assert training_salt_problem(salt_id(SALT), recorded, False, "here") is None
    assert training_salt_problem(None, recorded, True, "here") is None  # on purpose
    lost = training_salt_problem(None, recorded, False, "/state/privacy/salt")
    assert lost is not None and f"restore the salt ({SALT_ENV} or /state/privacy/salt) that trained v2" in lost
    assert f"(salt id {salt_id(SALT)})" in lost and NEW_SALT_FLAG in lost
    changed = training_salt_problem("bbbbbbbbbbbb", recorded, False, "here")
    assert changed is not None and "id bbbbbbbbbbbb" in changed
    # the adapter: no salt file is created when a registered version records one
    with pytest.raises(PrivacyError, match="restore the salt"):
        privacy_salt.training_tokeniser(tmp_path, ("region",), recorded)
    assert not (tmp_path / "privacy" / "salt").exists()
    created = privacy_salt.training_tokeniser(tmp_path, ("region",), recorded, new_salt=True)
    assert created.salt_id == salt_id(privacy_salt.read_salt(tmp_path) or b"")
    assert privacy_salt.training_tokeniser(tmp_path, ("region",), []).salt_id == created.salt_id  # kept


def test_versions_without_the_salt_tag_are_read_only_when_a_salt_would_be_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from retrain.application.training import recorded_salts

    class Registry:
        def __init__(self, tagged: list[tuple[str, str]]) -> None:
            self.tagged = tagged
            self.asked: list[bool] = []

        def recorded_salt_ids(self, read_specs: bool = False) -> list[tuple[str, str]]:
            self.asked.append(read_specs)
            return [("1", "from-the-spec")] if read_specs else self.tagged

    monkeypatch.delenv(SALT_ENV, raising=False)
    settings = load_settings(_project(tmp_path, ["region"]))
    untagged = Registry([])
    assert recorded_salts(untagged, settings, tmp_path / "state") == [("1", "from-the-spec")]  # type: ignore[arg-type]
    assert untagged.asked == [False, True]
    tagged = Registry([("2", "from-the-tag")])
    assert recorded_salts(tagged, settings, tmp_path / "state") == [("2", "from-the-tag")]  # type: ignore[arg-type]
    assert tagged.asked == [False]
    plain = load_settings(PARAMS)  # nothing to tokenise: the registry is not asked
    assert recorded_salts(Registry([]), plain, tmp_path / "state") == []  # type: ignore[arg-type]


def test_fit_reads_the_salt_and_never_creates_it_unasked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from retrain.application.fit import fit

    monkeypatch.delenv(SALT_ENV, raising=False)
    settings = load_settings(_project(tmp_path, ["region"]))
    with pytest.raises(PrivacyError, match=NEW_SALT_FLAG):
        fit(tmp_path, settings, tmp_path / "models", tmp_path / "plots", tmp_path / "m.json", None, tmp_path / "state")
    assert not (tmp_path / "state" / "privacy").exists() and not (tmp_path / "models").exists()


def test_two_creators_keep_one_salt_and_an_empty_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(SALT_ENV, raising=False)
    path = tmp_path / "privacy" / "salt"
    path.parent.mkdir(mode=0o700)
    path.write_text("the first creator's salt\n")
    # the second creator looked before the first linked its file into place: it gets the first's salt
    monkeypatch.setattr(privacy_salt, "read_salt", lambda *_: None)
    assert privacy_salt.create_salt(tmp_path) == b"the first creator's salt"
    assert path.read_text() == "the first creator's salt\n" and list(path.parent.iterdir()) == [path]
    monkeypatch.undo()
    # an empty file (a creator that crashed mid-write before this fix): a clear error, never overwritten
    path.write_text("")
    with pytest.raises(PrivacyError, match="is empty"):
        privacy_salt.read_salt(tmp_path, {})
    with pytest.raises(PrivacyError, match="is empty"):
        privacy_salt.create_salt(tmp_path)
    with pytest.raises(PrivacyError, match="is empty"):
        privacy_salt._written_by_another(path, wait_seconds=0.1)
    assert path.read_text() == ""


def test_no_salt_is_needed_without_sensitive_columns(tmp_path: Path):
    assert not privacy_salt.tokeniser(tmp_path, ())
    assert not privacy_salt.tokeniser(tmp_path, (), create=True)
    assert not (tmp_path / "privacy").exists()


def test_a_model_is_read_only_under_the_salt_it_was_trained_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(SALT_ENV, SALT.decode())
    spec = FeatureSpec(("amount",), (("region", ("tok_0",)),), tokenised=("region",), salt_id=salt_id(SALT))
    assert model_tokens(spec, tmp_path, "v1").columns == ("region",)
    monkeypatch.setenv(SALT_ENV, "another salt")
    with pytest.raises(PrivacyError, match=SALT_ENV):
        model_tokens(spec, tmp_path, "v1")
    monkeypatch.delenv(SALT_ENV)
    with pytest.raises(PrivacyError, match=SALT_ENV):  # no salt at all: the same clear error
        model_tokens(spec, tmp_path, "v1")
    plain = FeatureSpec(("amount",), (("region", ("north",)),))
    assert not model_tokens(plain, tmp_path, "v1")  # a model without tokens needs no salt


def test_the_spec_records_its_tokens_and_a_plain_spec_is_what_it_always_was():
    plain = FeatureSpec(("amount",), (("region", ("north",)),))
    assert plain.to_dict() == {"numeric": ["amount"], "categorical": [{"name": "region", "categories": ["north"]}]}
    assert FeatureSpec.from_dict(plain.to_dict()) == plain
    spec = FeatureSpec(("amount",), (("region", ("tok_0",)),), tokenised=("region",), salt_id="abc")
    assert spec.to_dict()["privacy"] == {"tokenised": ["region"], "salt_id": "abc"}
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


# ---- declaration -------------------------------------------------------------------------------------


def test_the_demo_declares_nothing_and_keeps_its_params_hash():
    settings = load_settings(PARAMS)
    assert settings.privacy.sensitive == () and settings.tokenised_columns == ()
    record = TrainingSettings.of(settings, salt_id="ignored").to_dict()
    assert "privacy" not in record and set(record) == {"dataset", "split", "model"}
    assert training_params_hash(settings, "any") == training_params_hash(settings)


def _project(tmp_path: Path, sensitive: list[str], contract_meta: dict | None = None) -> Path:
    shutil.copytree(REPO / "data_contracts", tmp_path / "data_contracts")
    raw = yaml.safe_load(PARAMS.read_text())
    raw["privacy"] = {"sensitive": sensitive}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    if contract_meta is not None:
        path = tmp_path / "data_contracts" / "loans" / "v3.json"
        contract = json.loads(path.read_text())
        contract["meta"]["columns"] = contract_meta
        path.write_text(json.dumps(contract))
    return tmp_path / "params.yaml"


def test_sensitive_columns_are_the_union_of_params_and_the_contract(tmp_path: Path):
    settings = load_settings(_project(tmp_path, ["loan_id", "age"], {"region": {"sensitive": True}}))
    assert settings.privacy.sensitive == ("loan_id", "age", "region")
    # text the model or the gate reads becomes tokens; never a number, never the id
    assert settings.tokenised_columns == ("region",)
    with_slice_only = settings.model_copy(
        update={
            "gate": settings.gate.model_copy(
                update={"slices": settings.gate.slices.model_copy(update={"categorical": ("region", "purpose")})}
            )
        }
    )
    assert with_slice_only.tokenised_columns == ("region",)
    assert TrainingSettings.of(settings, "s1").params_hash() != TrainingSettings.of(settings, "s2").params_hash()


def test_a_sensitive_number_or_id_sliced_by_value_is_refused_at_start_up(tmp_path: Path):
    params = _project(tmp_path, ["age"])
    raw = yaml.safe_load(params.read_text())
    raw["gate"]["slices"]["categorical"] = ["region", "age"]
    params.write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError, match=r"key 'gate\.slices\.categorical': column 'age' is sensitive") as raised:
        load_settings(params)
    assert "numeric_bins" in str(raised.value)
    raw["gate"]["slices"]["categorical"] = ["region"]
    raw["gate"]["slices"]["numeric_bins"] = {"age": [18, 40, 100]}  # the user's edges name no value
    params.write_text(yaml.safe_dump(raw))
    assert load_settings(params).gate.slices.numeric_bins["age"] == (18, 40, 100)


def test_an_unknown_sensitive_column_is_named(tmp_path: Path):
    with pytest.raises(SettingsError, match=r"key 'privacy\.sensitive': column 'e_mail' is not declared"):
        load_settings(_project(tmp_path, ["e_mail"]))
    raw = yaml.safe_load(PARAMS.read_text())
    raw["privacy"] = {"sensitiv": []}
    with pytest.raises(SettingsError, match=r"privacy\.sensitiv"):
        parse_settings(raw, "params.yaml")


def test_the_contract_declares_per_column():
    assert contract_sensitive({"meta": {"columns": {"a": {"sensitive": True}, "b": {"sensitive": False}}}}) == ("a",)
    assert contract_sensitive({"meta": {}}) == () and contract_sensitive({}) == ()


# ---- what leaves the store ---------------------------------------------------------------------------


def test_a_logged_contract_withholds_value_sets_of_sensitive_columns():
    contract = json.loads((REPO / "data_contracts" / "loans" / "v3.json").read_text())
    copy = redacted_contract(contract, ["region"])
    region = [e for e in copy["expectations"] if e["kwargs"].get("column") == "region"]
    in_set = next(e for e in region if e["type"] == "expect_column_values_to_be_in_set")
    assert in_set["kwargs"]["value_set"] == WITHHELD and "north" not in json.dumps(copy)
    assert is_redacted(copy) and not is_redacted(contract)
    assert canonical_hash(contract) != canonical_hash(copy)  # the recorded hash stays the real file's
    assert "north" in json.dumps(contract)  # the original is untouched
    assert redacted_contract(contract, []) == contract


def test_every_expectation_about_a_sensitive_column_is_redacted_and_its_failures_withheld():
    from types import SimpleNamespace

    from retrain.adapters.contracts import _failure

    written = [
        {
            "type": "expect_column_quantile_values_to_be_between",
            "kwargs": {"column": "age", "quantile_ranges": {"quantiles": [0.5], "value_ranges": [[37, 41]]}},
        },
        {
            "type": "expect_column_pair_values_to_be_in_set",
            "kwargs": {
                "column_A": "region",
                "column_B": "purpose",
                "value_pairs_set": [["north", "car"]],
                "mostly": 0.9,
            },
        },
        {
            "type": "expect_column_kl_divergence_to_be_less_than",
            "kwargs": {
                "column": "purpose",
                "partition_object": {"values": ["car"]},
                "row_condition": 'region == "north"',
                "condition_parser": "pandas",
            },
        },
        {"type": "expect_multicolumn_sum_to_equal", "kwargs": {"column_list": ["age", "term_months"], "sum_total": 77}},
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "purpose", "row_condition": 'regional == "x"'},
        },
    ]
    copy = redacted_contract({"meta": {}, "expectations": written}, ["region", "age"])
    text = json.dumps(copy["expectations"][:4])
    assert not any(secret in text for secret in ("37", "north", "car", "77")), text
    assert (
        copy["expectations"][1]["kwargs"]["column_A"] == "region" and copy["expectations"][1]["kwargs"]["mostly"] == 0.9
    )
    assert copy["expectations"][3]["kwargs"]["column_list"] == ["age", "term_months"]
    assert copy["expectations"][4] == written[4]  # "regional" is another column
    # a failed pair expectation on a sensitive column gives its count, not its values
    config = SimpleNamespace(kwargs=written[1]["kwargs"], type=written[1]["type"], meta={})
    result = {"unexpected_count": 2, "partial_unexpected_list": [["north", "boat"]], "unexpected_index_list": [1, 2]}
    failure = _failure(config, result, {}, pd.Index(["region", "purpose"]), {"region"})
    assert failure.details == f"2 unexpected values; {WITHHELD}" and "north" not in repr(failure)
    assert "north" in _failure(config, result, {}, pd.Index(["region", "purpose"]), {"age"}).details


def test_a_kept_verdict_is_not_reused_once_the_sensitive_columns_change(tmp_path: Path):
    from retrain.adapters.validation_cache import cache_key

    batch = tmp_path / "loans-2024-01-01.csv"
    batch.write_text("a\n1\n")
    contract = REPO / "data_contracts" / "loans" / "v3.json"
    settings = load_settings(PARAMS)
    declared = settings.model_copy(update={"privacy": settings.privacy.model_copy(update={"sensitive": ("loan_id",)})})
    assert cache_key(batch, settings, contract) != cache_key(batch, declared, contract)


def test_validation_failures_on_sensitive_columns_give_counts_only():
    failures = (
        ExpectationFailure("expect_column_values_to_be_in_set", "region", 3, "unexpected values: ZQX", "row"),
        ExpectationFailure("expect_column_values_to_be_in_set", "purpose", 2, "unexpected values: boat", "row"),
        ExpectationFailure("expect_column_to_exist", "region", None, "the column is missing from the batch"),
    )
    shown = withhold_values(failures, ["region"])
    assert shown[0].details == f"3 unexpected values; {WITHHELD}" and shown[0].unexpected_count == 3
    assert shown[1] == failures[1]
    assert shown[2].details == "the column is missing from the batch"


def test_an_unparsable_number_is_counted_never_shown():
    from retrain.domain.errors import InputError
    from retrain.domain.features import encode_features

    spec = FeatureSpec(("age",), ())
    frame = pd.DataFrame({"age": ["41", "123-45-6789", None, "x"]})
    with pytest.raises(InputError, match=r"numeric feature 'age': 2 value\(s\) are not numbers") as raised:
        encode_features(frame, spec)
    assert "123-45-6789" not in str(raised.value) and raised.value.__cause__ is None
    assert encode_features(frame.iloc[[0, 2]], spec)["age"].tolist()[0] == 41.0


def test_a_sensitive_numeric_profile_keeps_no_extreme_value():
    values = pd.Series(np.arange(1, 1001, dtype="float64"))
    plain, hidden = numeric_profile("age", values, 10), numeric_profile("age", values, 10, sensitive=True)
    assert plain.edges[0] == 1.0 and plain.edges[-1] == 1000.0
    assert 1.0 not in hidden.edges and 1000.0 not in hidden.edges
    assert hidden.present == 1000 and len(hidden.counts) == len(hidden.edges) + 1


def test_the_input_example_is_made_up_from_the_profile():
    frame = pd.DataFrame(
        {
            "amount": np.arange(100, dtype="float64"),
            "age": np.arange(20, 120, dtype="float64"),
            "region": ["north"] * 60 + ["south"] * 40,
            "city": [f"tok_{i:010x}" for i in range(100)],
        }
    )
    spec = build_feature_spec(frame, ["amount", "age"], ["region", "city"])
    profile = build_profile(
        frame, ["amount", "age"], ["region", "city"], holdout_predictions=None, metrics={}, quantiles=10
    )
    example = synthetic_example(profile, spec, sensitive=["age", "city"])
    assert list(example.columns) == list(spec.columns) and len(example) == 1
    row = example.iloc[0]
    assert row["region"] == "north" and 40 <= row["amount"] <= 60
    assert np.isnan(row["age"]) and row["city"] == PLACEHOLDER


def test_a_champion_that_cannot_be_scored_fails_the_comparison():
    settings = load_settings(PARAMS)
    holdout = pd.DataFrame(
        {
            "defaulted": [0, 1] * 50,
            "region": ["north"] * 100,
            "purpose": ["car"] * 100,
            "home_ownership": ["rent"] * 100,
            "credit_score": [700] * 100,
        }
    )
    predictions = np.linspace(0.1, 0.9, 100)
    judged = judge(
        settings, holdout, predictions, None, {}, champion_problem="the champion (version 1) cannot be scored"
    )
    check = judged.decision.check(CHAMPION_COMPARISON)
    assert check is not None and not check.passed and "cannot be scored" in check.reason
    assert not judged.decision.promote
    # trained under a new salt on purpose: not compared, said so, and the reviewers decide
    problem = "the champion (version 1) cannot be scored"
    renewed = judge(settings, holdout, predictions, None, {}, champion_problem=problem, new_salt=True)
    check = renewed.decision.check(CHAMPION_COMPARISON)
    assert check is not None and check.passed and "not compared" in check.reason and NEW_SALT_FLAG in check.reason
    # the comparison no longer refuses: whatever else the automatic checks say decides (then reviewers)
    assert renewed.decision.reasons == tuple(r for r in judged.decision.reasons if "cannot be scored" not in r)


# ---- retrain init ------------------------------------------------------------------------------------


def test_init_proposes_columns_whose_names_or_values_look_personal():
    sample = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "full_name": ["Ada L", "Bob K"],
            "contact": ["ada@example.com", "bob@example.org"],
            "mobile_no": ["+44 20 7946 0958", "+1 (555) 010-9999"],
            "reach": ["+44 20 7946 0958", "+1 (555) 010-9999"],
            "DateOfBirth": ["1990-01-01", "1985-05-05"],
            "ssn": ["078-05-1120", "219-09-9999"],
            "home_address": ["1 Main St", "2 High St"],
            "income": [50_000.0, 60_000.0],
            "region": ["north", "south"],
            "identical": [1, 1],
            "paid": [True, False],
        }
    )
    proposed = propose_sensitive(sample)
    assert set(proposed) == {
        "customer_id",
        "full_name",
        "contact",
        "mobile_no",
        "reach",
        "DateOfBirth",
        "ssn",
        "home_address",
    }
    assert "e-mail" in proposed["contact"] and "phone" in proposed["reach"]


# ---- the team stack ----------------------------------------------------------------------------------


def test_the_stack_provisions_one_salt_for_its_worker_and_keeps_it(tmp_path: Path):
    from retrain.stack import StackConfig, person_env, worker_env
    from retrain.stack.secrets import load_secrets

    config = StackConfig(home=tmp_path / "stack")
    keys = load_secrets(config, ("ada",))
    salt = keys.privacy_salt.get_secret_value()
    assert len(salt) == 64 and salt not in repr(keys)
    assert json.loads((config.home / "secrets.json").read_text())["privacy_salt"] == salt
    assert worker_env(config, keys)[SALT_ENV] == salt
    assert load_secrets(config, ("ada", "bob")).privacy_salt.get_secret_value() == salt  # never replaced
    assert SALT_ENV not in person_env(config, keys, "ada")  # handed to people by the operator, not by profile


def test_never_a_number_nor_the_id_becomes_a_token():
    from retrain.domain.sensitive import tokenised_columns

    chosen = tokenised_columns(["id", "age", "region", "city"], ["region"], ["age", "city", "id"], "id", ["age"])
    assert chosen == ("region", "city")


def test_rows_left_in_storage_are_tokenised_as_they_are_read():
    from retrain.domain.privacy import TokenisedRows
    from retrain.domain.rows import StoredRows, column_of, pieces_of

    frame = pd.DataFrame({"region": ["north", "south", "north"], "amount": [1.0, 2.0, 3.0]})

    class Stored:
        column_names = ("region", "amount")

        def __len__(self) -> int:
            return len(frame)

        def column(self, name: str) -> pd.Series:
            return frame[name]

        def pieces(self, piece_rows: int):
            for start in range(0, len(frame), piece_rows):
                yield frame.iloc[start : start + piece_rows]

    tokeniser = Tokeniser.of(SALT, ["region"])
    rows = tokeniser.rows(Stored())
    assert isinstance(rows, TokenisedRows) and isinstance(rows, StoredRows)
    expected = tokeniser.frame(frame)
    assert column_of(rows, "region").tolist() == expected["region"].tolist()
    assert pd.concat(list(pieces_of(rows, 2)))["region"].tolist() == expected["region"].tolist()
    assert column_of(rows, "amount").tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_task_learns_tokens_and_reads_stored_rows_as_it_learnt_them(task):
    from retrain.domain import synthetic
    from retrain.domain.fitting import fit_split, split_snapshot
    from retrain.domain.privacy import tokenise_split
    from retrain.domain.settings import DatasetSettings, SplitSettings
    from retrain.domain.task import task_for
    from retrain.domain.training import predict

    settings = load_settings(PARAMS)
    model = settings.model.model_copy(
        update={"threads": 1, "xgboost": settings.model.xgboost.model_copy(update={"num_boost_round": 15})}
    )
    dataset = DatasetSettings.model_validate({**synthetic.dataset_params(task), "id_column": None})
    sensitive = dataset.features.categorical[0]
    frame = synthetic.synthetic_frame(task, days=5, rows_per_day=150, seed=2)
    tokeniser = Tokeniser.of(SALT, [sensitive])
    split = tokenise_split(split_snapshot(frame, dataset, SplitSettings(holdout_days=1, validation_days=1)), tokeniser)
    fitted = fit_split(split, dataset, model)
    spec = fitted.model.spec
    assert spec.tokenised == (sensitive,) and spec.salt_id == salt_id(SALT)
    assert all(category.startswith("tok_") for category in dict(spec.categories)[sensitive])
    again = predict(fitted.model.booster, tokeniser.frame(split.stored_holdout), spec, task_for(dataset), 1)
    np.testing.assert_array_equal(again, fitted.holdout_predictions)
    assert fit_split(split, dataset, model).model_bytes() == fitted.model_bytes()


def test_late_labels_name_no_id_when_the_id_column_is_sensitive():
    from retrain.domain.feedback import FeedbackReport

    def report(withheld: bool) -> FeedbackReport:
        return FeedbackReport(
            labels_file="labels.csv",
            rows=5,
            joined=1,
            already_known=0,
            files_changed=("scores.parquet",),
            unknown_ids=("7731000777",),
            disagreeing_ids=("7731000778",),
            conflicting_ids=("7731000779",),
            repeated_rows=0,
            without_label=0,
            ids_withheld=withheld,
        )

    assert "7731000777" in report(False).summary()
    hidden = report(True)
    assert "77310007" not in hidden.summary() and "1 id(s) have no stored score" in hidden.summary()
    assert hidden.shared(hidden.unknown_ids) == [] and report(False).shared(("a",)) == ["a"]
