"""CPU threads for PyTorch: every core this process may run on, less those other work keeps busy.

Debian's PyTorch (OpenMP backend) can start with a single intra-op thread on a machine with more
cores (measured here: `omp_get_max_threads() == 1` on 2 cores, so training ran on one core). An
explicit OMP_NUM_THREADS or torch.set_num_threads() by the caller is left alone; processes started
by torchrun share the cores between them. A bitwise-exact resume needs the same thread count as the
run it continues (float reductions split differently across threads); otherwise it continues correctly
but not bit for bit.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import torch


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def idle_cores(share: int) -> int:
    """Cores of `share` that other work leaves free: share minus the 1-minute load average, at least 1.

    Two threads on two cores that another process keeps busy ran 10-20x slower than one thread (OpenMP
    threads spin at every barrier waiting for the descheduled one: 1.6-3.1 against 24-36 images/s
    for the default model), so a busy machine gets fewer threads, never more than the cores."""
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Unix
        return share
    return max(1, min(share, share - int(round(busy))))


def choose_threads(requested: Optional[int] = None) -> Tuple[int, str]:
    """Sets PyTorch's intra-op threads and returns (count, why): --threads if given, else an explicit
    OMP_NUM_THREADS, else this process's share of the cores less what other processes keep busy."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be at least 1, got {requested}")
        torch.set_num_threads(requested)
        return requested, "--threads"
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "OMP_NUM_THREADS"
    share = max(1, available_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    n = idle_cores(share)
    torch.set_num_threads(n)
    why = "one per core" if n == share else f"{share - n} of {share} cores busy with other work"
    return n, why


def use_all_cores() -> int:
    """Raises PyTorch's intra-op threads to this process's share of the cores; returns the count."""
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    share = max(1, available_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    if torch.get_num_threads() < share:
        torch.set_num_threads(share)
    return torch.get_num_threads()
