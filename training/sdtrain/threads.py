"""CPU threads for PyTorch: use every core this process may run on.

Debian's PyTorch (OpenMP backend) can start with a single intra-op thread on a machine with more
cores (measured here: `omp_get_max_threads() == 1` on 2 cores, so training ran on one core). An
explicit OMP_NUM_THREADS or torch.set_num_threads() by the caller is left alone; processes started
by torchrun share the cores between them. A bitwise-exact resume needs the same thread count as the
run it continues (float reductions split differently across threads); otherwise it continues correctly
but not bit for bit.
"""
from __future__ import annotations

import os

import torch


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def use_all_cores() -> int:
    """Raises PyTorch's intra-op threads to this process's share of the cores; returns the count."""
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    share = max(1, available_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    if torch.get_num_threads() < share:
        torch.set_num_threads(share)
    return torch.get_num_threads()
