"""A lock file in a run folder, so two trainers never write the same checkpoint.

The lock (`train.lock`) names the holder's PID and host. A second trainer on the same folder refuses
with a message naming them; a lock whose process is gone (same host, PID not running) is stale and
taken over. Only the first process of a distributed run takes it.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


class RunLockError(Exception):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """`with RunLock(folder):` holds `folder/train.lock` for the block."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "train.lock"
        self.held = False
        self.created = False

    def __enter__(self) -> "RunLock":
        self.created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None or (holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1)))):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                raise RunLockError(
                    f"{self.path.parent} is in use by another trainer (pid {holder.get('pid')} on "
                    f"{holder.get('host')}, since {holder.get('since')}); wait for it to finish or stop it, or "
                    "train into another --out") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise RunLockError(f"could not take {self.path}; remove it if no trainer is running")

    def _holder(self):
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
        if self.created:
            try:  # a run that failed to start leaves no empty folder behind
                self.path.parent.rmdir()
            except OSError:
                pass  # it holds the run's files
