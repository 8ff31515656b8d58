"""The training strategies: SingleProcess's trivial answers, DataParallel's shares partitioning every
batch, and both answering every question fit's parts ask (the Strategy protocol)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualnet.distributed.parallel import DataParallel
from dualnet.train import TrainState
from dualnet.train.strategy import SingleProcess, Strategy, make_strategy


def _questions() -> list[str]:
    return [name for name, _ in inspect.getmembers(Strategy, inspect.isfunction) if not name.startswith("_")]


def test_both_strategies_answer_every_question_of_the_protocol_with_its_arguments():
    assert len(_questions()) == 8
    for cls in (SingleProcess, DataParallel):
        for name in _questions():
            want = list(inspect.signature(getattr(Strategy, name)).parameters)
            got = list(inspect.signature(getattr(cls, name)).parameters)
            assert got[:len(want)] == want, (cls.__name__, name)


def test_single_process_takes_every_row_and_passes_decisions_through():
    state = TrainState(seed=3, loss_sum=2.5, correct=4)
    strategy = make_strategy(None, None, None, state, 8, 20)
    assert isinstance(strategy, SingleProcess) and strategy.state is state and (strategy.rank, strategy.size) == (0, 1)
    order = np.arange(20)[::-1]
    batch = np.zeros((8, 1, 2, 2), np.float32)
    assert strategy.order_share(order) is order and strategy.host_share(batch) is batch
    assert strategy.rows(16, 20) == (16, 20)
    assert strategy.decide_stop(None) is None and strategy.decide_stop(15) == 15
    assert strategy.agree_reason("patience") == "patience"
    assert strategy.tally(lambda loss_sum, correct: (loss_sum, correct), state) == (2.5, 4)
    assert strategy.evaluate(lambda model, data: (model, data), "m", "d") == ("m", "d")


def _ranks(size: int) -> list[DataParallel]:
    """DataParallel's slicing needs only its rank and size (no communicator is asked)."""
    ranks = []
    for r in range(size):
        dp = object.__new__(DataParallel)
        dp.rank, dp.size = r, size
        ranks.append(dp)
    return ranks


@settings(max_examples=30, deadline=None)
@given(size=st.integers(1, 4), per_rank=st.integers(1, 4), n=st.integers(1, 60), seed=st.integers(0, 9))
def test_the_ranks_shares_of_each_batch_partition_it_in_rank_order_and_weights_sum_to_one(size, per_rank, n, seed):
    batch_size = size * per_rank
    if 0 < n % batch_size < size:
        n += size  # DataParallel refuses a last batch with fewer images than ranks
    order = np.random.default_rng(seed).permutation(n)
    ranks = _ranks(size)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        got, weights = [], []
        for dp in ranks:
            lo, hi = dp.rows(start, stop)
            got.append(dp.order_share(order)[lo:hi])
            weights.append((hi - lo) / (stop - start))
        want = order[start:stop]
        np.testing.assert_array_equal(np.sort(np.concatenate(got)), np.sort(want))
        for dp, rows in zip(ranks, got):
            np.testing.assert_array_equal(rows, want[dp.rank::size])  # rank r takes batch[r::size]
        assert sum(weights) == pytest.approx(1.0)
        host = np.arange(stop - start, dtype=np.float32).reshape(-1, 1, 1, 1)
        for dp in ranks:
            share = dp.host_share(host)
            assert share.flags.c_contiguous
            np.testing.assert_array_equal(share, host[dp.rank::size])
