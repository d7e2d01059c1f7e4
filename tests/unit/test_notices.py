"""What people are told: the right words, the right people, never a credential, never a failed run."""

from __future__ import annotations

from retrain.adapters.notify import Channels, channels_from_env, send
from retrain.domain import notices


def test_a_waiting_run_tells_the_reviewers_how_to_answer_and_where_to_look():
    notice = notices.awaiting_review(
        "retrain-loans", "3", "run-42", ("alice", "bob"), 1, 60, (("MLflow run", "http://mlflow/run/1"),)
    )
    text = notice.text()
    assert notice.audience == "reviewers" and notice.recipients == ("alice", "bob")
    assert "retrain-loans v3 waits for review (1 of alice, bob)" in text
    assert "retrain approve run-42 --reviewer NAME" in text and "retrain reject run-42" in text
    assert "MLflow run: http://mlflow/run/1" in text and "60 min" in text
    assert notice.webhook_payload()["text"] == text


def test_outcomes_are_named_as_people_say_them():
    assert notices.outcome_word(True, "approved") == "promoted"
    assert notices.outcome_word(False, "rejected") == "rejected by a reviewer"
    assert notices.outcome_word(False, "timed_out") == "timed out waiting for review"
    assert notices.outcome_word(False, None) == "refused by the gate"
    refused = notices.training_outcome("m", "4", "refused by the gate", "kept v3", ("absolute_floor failed",))
    assert refused.kind == "refused" and refused.subject == "m v4: refused by the gate"
    assert "- absolute_floor failed" in refused.text()
    assert notices.outcome_word(False, "approved", rollout=True) == "rolling out as candidate"
    ended = notices.rollout_ended("m", "5", "4", "rolled_back", ("surely worse on real traffic",))
    assert ended.kind == "rollout_rolled_back" and ended.audience == "team"
    assert ended.subject == "m: rollout of v5 rolled back; v4 stays champion"
    done = notices.rollout_ended("m", "5", "4", "completed", ())
    assert done.subject == "m: rollout of v5 completed; v5 is champion"


def test_credentials_in_a_failed_runs_message_are_masked():
    message = (
        "could not connect to postgresql+psycopg://retrain:s3cr3t@db:5432/ledger; "
        "s3://AKIAEXAMPLE:wJalr@bucket/key failed, password=hunter2 token: abc.def"
    )
    text = notices.run_failed("training", "bold-fox", "Failed", message).text()
    for secret in ("s3cr3t", "wJalr", "AKIAEXAMPLE", "hunter2", "abc.def"):
        assert secret not in text
    assert "postgresql+psycopg://***@db:5432/ledger" in text and "password=***" in text


def test_channels_come_from_the_environment_and_never_show_their_secrets():
    channels = channels_from_env(
        {
            "RETRAIN_NOTIFY_WEBHOOK": "https://hooks.example/T000/B000/XXXXSECRET",
            "RETRAIN_NOTIFY_SMTP": "127.0.0.1:2525",
            "RETRAIN_NOTIFY_SMTP_PASSWORD": "mail-secret",
            "RETRAIN_NOTIFY_TEAM": "team@example.com, ops@example.com",
            "RETRAIN_NOTIFY_REVIEWERS": "alice=alice@example.com,bob=bob@example.com",
        }
    )
    assert channels.configured and (channels.smtp_host, channels.smtp_port) == ("127.0.0.1", 2525)
    assert "XXXXSECRET" not in repr(channels) and "mail-secret" not in repr(channels)
    waiting = notices.awaiting_review("m", "1", "r", ("alice", "carol"), 1, 5)
    assert channels.addresses(waiting) == ["alice@example.com"]  # carol has no address: not mailed
    assert channels.addresses(notices.rolled_back("m", "2", "1", "bad", "ops")) == [
        "team@example.com",
        "ops@example.com",
    ]
    assert not channels_from_env({}).configured


def test_a_channel_that_is_down_is_a_warning_without_its_address_never_an_error():
    said: list[str] = []
    down = Channels(
        webhook="http://127.0.0.1:9/T000/SECRET", smtp_host="127.0.0.1", smtp_port=9, team=("t@example.com",)
    )
    delivered = send(notices.rolled_back("m", "2", "1", "bad", "ops"), down, said.append)
    assert delivered == [] and len(said) == 2
    assert all("SECRET" not in line and "127.0.0.1" not in line for line in said)


def test_more_credential_shapes_are_masked_and_plain_words_are_left_alone():
    cases = {
        "redis://:pw-123@cache:6379": "redis://***@cache:6379",
        "access_token=abc123 client_secret: xyz789": "access_token=*** client_secret=***",
        "AWS_SECRET_ACCESS_KEY=wJalrXUt": "AWS_SECRET_ACCESS_KEY=***",
        "Authorization: Bearer eyJabc.def": "Authorization: Bearer ***",
        "unexpected token: '}' at line 3": "unexpected token: '}' at line 3",
    }
    for text, masked in cases.items():
        assert notices.without_credentials(text) == masked


def test_an_smtp_setting_that_cannot_be_read_configures_no_server_instead_of_failing():
    assert channels_from_env({"RETRAIN_NOTIFY_SMTP": "mail:abc"}).smtp_host is None
    assert (channels_from_env({"RETRAIN_NOTIFY_SMTP": " mail.example "}).smtp_host, 25) == ("mail.example", 25)
    v6 = channels_from_env({"RETRAIN_NOTIFY_SMTP": "[::1]:2525"})
    assert (v6.smtp_host, v6.smtp_port) == ("::1", 2525)
