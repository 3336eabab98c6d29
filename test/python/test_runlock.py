"""One trainer per run folder, and `npm run train` (training/py.mjs) never leaves one running behind.

SIGTERM to the Node wrapper reaches Python, which saves its checkpoint before both exit; a second
trainer on the same folder refuses, naming the holder; a lock left by a dead process is taken over.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, train_args
from sdtrain import train
from sdtrain.runlock import RunLock, RunLockError


def _wait_for(pred, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def test_sigterm_to_the_npm_wrapper_stops_python_with_a_checkpoint_and_a_second_trainer_refuses(tiny_data, tmp_path):
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: training/py.mjs needs Node.js 20+")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    wrapper = subprocess.Popen(
        ["node", str(REPO / "training" / "py.mjs"), "train",
         *train_args(tiny_data, out, 100000, "--ckpt-every", "1000000")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lock = out / "train.lock"
        _wait_for(lambda: lock.exists() and lock.read_text().strip() != "")
        holder = json.loads(lock.read_text())
        py_pid = holder["pid"]
        assert py_pid != wrapper.pid and holder["host"] == socket.gethostname()
        # A second trainer on the same folder refuses at once, naming the holder.
        second = subprocess.run(
            ["node", str(REPO / "training" / "py.mjs"), "train", *train_args(tiny_data, out, 10)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"pid {py_pid}" in second.stderr and "in use by another trainer" in second.stderr
        time.sleep(1.0)  # a few steps in
        wrapper.send_signal(signal.SIGTERM)
        wrapper.wait(timeout=120)
        assert not _alive(py_pid), "the trainer outlived the npm wrapper"
        assert (out / "checkpoint.pt").is_file(), "no checkpoint saved on SIGTERM"
        assert not lock.exists()
    finally:
        if wrapper.poll() is None:
            wrapper.kill()


def test_a_stale_lock_is_taken_over(tiny_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / "train.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "then"}))
    assert train.main(train_args(tiny_data, out, 2)) == 0
    assert not (out / "train.lock").exists()


def test_a_live_lock_on_another_host_is_respected(tmp_path):
    (tmp_path / "train.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "now"}))
    with pytest.raises(RunLockError, match="pid 1 on elsewhere"):
        with RunLock(tmp_path):
            pass
