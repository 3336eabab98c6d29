"""PyTorch's CPU thread count: training and evaluation use every core they may run on."""
from __future__ import annotations

import pytest
import torch

from sdtrain import threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_raises_threads_to_the_cores_of_the_affinity_mask(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    torch.set_num_threads(1)
    assert threads.available_cores() == 3
    assert threads.use_all_cores() == 3
    assert torch.get_num_threads() == 3


def test_shares_cores_between_torchrun_processes(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    torch.set_num_threads(1)
    assert threads.use_all_cores() == 2


def test_leaves_an_explicit_thread_count_alone(monkeypatch, restore_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    torch.set_num_threads(1)
    assert threads.use_all_cores() == 1
    assert torch.get_num_threads() == 1


def test_a_busy_machine_gets_fewer_threads(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.2, 1.0, 0.5))
    assert threads.choose_threads() == (1, "1 of 2 cores busy with other work")
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 0.3, 0.5))
    assert threads.choose_threads() == (2, "one per core")
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (7.0, 7.0, 7.0))
    assert threads.choose_threads()[0] == 1, "never fewer than one"


def test_threads_and_omp_num_threads_are_honoured(monkeypatch, restore_threads):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.choose_threads(2) == (2, "--threads") and torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    assert threads.choose_threads() == (2, "OMP_NUM_THREADS")
    with pytest.raises(ValueError, match="--threads must be at least 1"):
        threads.choose_threads(0)
