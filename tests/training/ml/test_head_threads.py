"""A small head fit runs its L-BFGS on one thread (training.ml.heads.SMALL_FIT_WORK: a second thread only waits, and
waits long while another process holds the other core), a big one on torch's threads, and the worker keeps its
threads for what comes after (a fine-tune, scoring)."""

import numpy as np
import pytest
import torch

from training.ml import heads


@pytest.fixture
def threads_seen(monkeypatch):
    seen = []
    step = torch.optim.LBFGS.step

    def recording(self, closure):
        seen.append(torch.get_num_threads())
        return step(self, closure)

    monkeypatch.setattr(torch.optim.LBFGS, "step", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield seen
    torch.set_num_threads(before)


def pool(rows: int, dim: int = 64):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, rows)
    x = rng.standard_normal((4, dim)).astype(np.float32)[y] + rng.standard_normal((rows, dim)).astype(np.float32)
    return x, [[int(v)] for v in y]


def test_a_small_fit_runs_on_one_thread_and_gives_the_worker_its_threads_back(threads_seen):
    x, labels = pool(300)
    fit = heads.fit_head(x[:100], labels[:100], 4, unlabeled=x[100:])

    assert threads_seen, "no L-BFGS fit"
    assert set(threads_seen) == {1}, threads_seen  # every fit: the labels', each self-training one
    assert torch.get_num_threads() == 2
    accuracy = (heads.predict_head(fit.head, x[100:]).argmax(1) == [c for (c,) in labels[100:]]).mean()
    assert accuracy > 0.8, accuracy


def test_a_fit_above_the_limit_keeps_torchs_threads(threads_seen, monkeypatch):
    monkeypatch.setattr(heads, "SMALL_FIT_WORK", 300 * 64 * 4 - 1)  # this pool is then one row too big
    x, labels = pool(300)
    heads.fit_head(x, labels, 4)

    assert threads_seen == [2]
    assert torch.get_num_threads() == 2


def test_a_failing_fit_still_gives_the_threads_back(threads_seen, monkeypatch):
    def broken(self, closure):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(torch.optim.LBFGS, "step", broken)
    x, labels = pool(50)
    with pytest.raises(RuntimeError, match="out of memory"):
        heads.fit_head(x, labels, 4)
    assert torch.get_num_threads() == 2
