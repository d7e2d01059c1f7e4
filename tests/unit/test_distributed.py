"""The Dask engine's pure parts: how rows are cut into parts and which workers get them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrain.domain.distributed import ClusterTooSmall, chosen_workers, in_rank_order, row_parts


@given(rows=st.integers(min_value=0, max_value=10_000), parts=st.integers(min_value=1, max_value=64))
def test_row_parts_cover_every_row_once_in_order_and_evenly(rows: int, parts: int):
    ranges = row_parts(rows, parts)
    covered = [row for start, stop in ranges for row in range(start, stop)]
    assert covered == list(range(rows))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1
    if rows >= parts:
        assert len(ranges) == parts and min(sizes) >= 1


def test_row_parts_are_the_same_cut_every_time():
    assert row_parts(10, 3) == row_parts(10, 3) == [(0, 3), (3, 7), (7, 10)]


def test_the_first_workers_by_address_are_chosen_whatever_order_the_scheduler_lists_them():
    listed = ["tcp://10.0.0.3:4000", "tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000"]
    assert chosen_workers(listed, 2) == ["tcp://10.0.0.1:4000", "tcp://10.0.0.2:4000"]
    assert chosen_workers(list(reversed(listed)), 2) == chosen_workers(listed, 2)


def test_a_cluster_smaller_than_the_count_is_refused_with_both_numbers_and_the_way_on():
    with pytest.raises(ClusterTooSmall, match=r"dask_workers is 4 but the Dask cluster has 2 worker\(s\)") as raised:
        chosen_workers(["tcp://a:1", "tcp://b:1"], 4)
    assert "lower model.dask_workers" in str(raised.value)
    assert raised.value.exit_code == 2


def test_parts_follow_xgboosts_rank_order_not_the_address_order():
    # XGBoost's tracker ranks by "[xgboost.dask-NAME]:ADDRESS": here the names order the workers
    # opposite to their addresses, and part i must go to the worker ranked i
    addresses = ["tcp://10.0.0.1:1", "tcp://10.0.0.2:1", "tcp://10.0.0.3:1"]
    names = {addresses[0]: "c", addresses[1]: "b", addresses[2]: "a"}
    assert in_rank_order(addresses, names) == list(reversed(addresses))
    task_ids = sorted(f"[xgboost.dask-{names[a]}]:{a}" for a in addresses)
    assert [task_id.split("]:")[1] for task_id in task_ids] == in_rank_order(addresses, names)
