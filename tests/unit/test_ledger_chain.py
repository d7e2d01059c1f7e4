"""The ledger's chain rule (lifecycle.chain_breaks), on hand-made histories."""

from __future__ import annotations

from retrain.domain.lifecycle import LedgerEntry, chain_breaks


def _history(*rows: tuple[str, str | None, str | None]) -> list[LedgerEntry]:
    return [
        LedgerEntry("m", kind, before, None, after, "pytest", position=index)  # type: ignore[arg-type]
        for index, (kind, before, after) in enumerate(rows, start=1)
    ]


def test_promotions_refusals_and_rollbacks_that_follow_each_other_are_a_chain():
    history = _history(
        ("promotion", None, "1"),
        ("refusal", None, "1"),  # judged while there was no champion, recorded after v1 took over
        ("promotion", "1", "2"),
        ("timeout", "2", "2"),
        ("rollback", "2", "1"),
        ("refusal", "2", "1"),  # judged against v2, recorded after the rollback: the champion it left is v1
    )
    assert chain_breaks(history) == []


def test_a_move_from_a_stale_champion_and_a_refusal_naming_the_wrong_champion_break_it():
    history = _history(
        ("promotion", None, "4"),
        ("promotion", "4", "5"),
        ("promotion", "4", "5"),
        ("promotion", "4", "6"),
        ("refusal", "4", "4"),
    )
    assert chain_breaks(history) == [
        "ledger entry #3 (promotion v4 -> v5) moves the champion from v4, but the previous move left v5",
        "ledger entry #4 (promotion v4 -> v6) moves the champion from v4, but the previous move left v5",
        "ledger entry #5 (refusal v4 -> v4) records v4 as the champion it left, but the last move left v6",
    ]


def test_the_first_move_starts_from_no_champion():
    assert chain_breaks(_history(("promotion", "3", "4"))) == [
        "ledger entry #1 (promotion v3 -> v4) moves the champion from v3, but the previous move left no champion"
    ]
