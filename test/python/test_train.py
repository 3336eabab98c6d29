"""Training: a short run learns and writes its outputs; kill -9 + --resume is bitwise exact."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import PYTHON, TINY_RUN_STEPS, TINY_SIZE, is_png, load_ckpt, sub_env, train_args
from sdtrain import train
from sdtrain.config import TrainConfig


def test_short_run_loss_falls_and_writes_outputs(tiny_run):
    for name in ("config.json", "checkpoint.pt", "samples.png", "loss.png", "summary.json"):
        assert (tiny_run / name).is_file(), f"{name} missing from the run directory"
    assert is_png(tiny_run / "samples.png") and is_png(tiny_run / "loss.png")
    assert not list(tiny_run.glob("*.tmp")), "atomic writes leave no temp files behind"

    ck = load_ckpt(tiny_run / "checkpoint.pt")
    assert ck["format"] == "spritediffusion-checkpoint-1"
    assert ck["step"] == TINY_RUN_STEPS and ck["categories"] == ["discs", "squares"]
    hist = ck["history"]
    assert hist["step"] == [25, 50, 75, 100, 125]
    losses = hist["loss"]
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < 0.75 * first, f"loss did not fall: {losses}"
    assert losses[0] < 1.2  # zero-initialised output starts at MSE ~ 1 against unit noise

    cfg = TrainConfig.load(tiny_run / "config.json")
    assert cfg.steps == TINY_RUN_STEPS and cfg.batch == 8 and cfg.min_snr_gamma == 0
    assert cfg.model.size == TINY_SIZE and cfg.model.widths == (8, 16) and cfg.model.emb_dim == 32
    assert cfg.model.n_context == 2, "n_context follows the dataset's categories"
    assert hist["lr"][-1] == train.lr_at(cfg, TINY_RUN_STEPS - 1)
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["step"] == TINY_RUN_STEPS and summary["images_seen"] == TINY_RUN_STEPS * 8


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(lr=1e-3, warmup=10, steps=110, min_lr_ratio=0.1)
    assert train.lr_at(cfg, 0) == 1e-4 and train.lr_at(cfg, 9) == 1e-3
    assert abs(train.lr_at(cfg, 10) - 1e-3) < 1e-12
    assert abs(train.lr_at(cfg, 110) - 1e-4) < 1e-12
    assert all(train.lr_at(cfg, s) >= train.lr_at(cfg, s + 1) for s in range(10, 110))


# A `python -m sdtrain.train` that sleeps 100 ms per optimizer step (the math is untouched), so the
# test can reliably SIGKILL it between checkpoints on a busy machine.
THROTTLED_TRAIN = """
import runpy, time, torch
_step = torch.optim.AdamW.step
def _slow_step(self, *a, **k):
    time.sleep(0.1)
    return _step(self, *a, **k)
torch.optim.AdamW.step = _slow_step
runpy.run_module("sdtrain.train", run_name="__main__", alter_sys=True)
"""


def _ckpt_step(path: Path):
    try:
        return int(load_ckpt(path)["step"])
    except Exception:  # not there yet, or being replaced
        return None


def test_resume_after_sigkill_is_exact(tiny_data, tmp_path, capsys, monkeypatch):
    # Bitwise-exact resume needs the same CPU thread count on both sides (float reductions split
    # differently across threads): the subprocess runs with OMP_NUM_THREADS=1 (sub_env), so do the
    # in-process runs (use_all_cores leaves an explicit OMP_NUM_THREADS alone).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _resume_after_sigkill_is_exact(tiny_data, tmp_path, capsys)
    finally:
        torch.set_num_threads(threads_before)


def _resume_after_sigkill_is_exact(tiny_data, tmp_path, capsys):
    N = 30
    common = ("--ckpt-every", "5", "--lr", "3e-3", "--warmup", "5")
    run_a, run_b = tmp_path / "a", tmp_path / "b"

    # A: uninterrupted, in process
    assert train.main(train_args(tiny_data, run_a, N, *common)) == 0

    # B: same config in a subprocess, SIGKILLed once its checkpoint reaches step >= 10
    log = tmp_path / "b.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen([PYTHON, "-c", THROTTLED_TRAIN, *train_args(tiny_data, run_b, N, *common)],
                                env=sub_env(), stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        killed_at = None
        try:
            deadline = time.time() + 120
            ck, last_mtime = run_b / "checkpoint.pt", None
            while time.time() < deadline and proc.poll() is None:
                mtime = ck.stat().st_mtime_ns if ck.exists() else None
                if mtime != last_mtime:
                    last_mtime = mtime
                    step = _ckpt_step(ck)
                    if step is not None and step >= 10:
                        proc.send_signal(signal.SIGKILL)
                        killed_at = step
                        break
                time.sleep(0.01)
        finally:
            if proc.poll() is None and killed_at is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    out = log.read_text(errors="replace")
    assert killed_at is not None, f"run B ended (rc {proc.returncode}) before it could be killed:\n{out}"
    assert proc.returncode == -signal.SIGKILL
    assert "done:" not in out, "run B must have been killed mid-run"
    resumed_from = _ckpt_step(run_b / "checkpoint.pt")
    assert resumed_from is not None and 10 <= resumed_from < N and resumed_from % 5 == 0

    # B resumed to N, in process
    capsys.readouterr()
    assert train.main(["--out", str(run_b), "--resume"]) == 0, capsys.readouterr().err

    a, b = load_ckpt(run_a / "checkpoint.pt"), load_ckpt(run_b / "checkpoint.pt")
    assert a["step"] == b["step"] == N
    assert a["images_seen"] == b["images_seen"] == N * 8
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        diff = [k for k in a[part] if not torch.equal(a[part][k], b[part][k])]
        assert not diff, f"{part} differs after resume in {diff[:5]}"
    assert all(torch.equal(x, y) for x, y in zip(a["gen_states"], b["gen_states"]))
    for k, sa in a["opt"]["state"].items():
        assert torch.equal(sa["exp_avg"], b["opt"]["state"][k]["exp_avg"])
    assert a["history"]["step"] == b["history"]["step"] == [25, 30]


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ("config.json", "checkpoint.pt"):
        shutil.copy(src / name, dst / name)
    return dst


def test_existing_checkpoint_without_resume_exits_2(tiny_run, tiny_data, tmp_path, capsys):
    out = _copy_run(tiny_run, tmp_path / "run")
    before = (out / "checkpoint.pt").read_bytes()
    rc = train.main(train_args(tiny_data, out, 5))
    err = capsys.readouterr().err
    assert rc == 2
    assert "--resume" in err and "checkpoint.pt" in err
    assert (out / "checkpoint.pt").read_bytes() == before, "the existing checkpoint is left untouched"


def test_corrupt_checkpoint_on_resume_exits_2(tiny_run, tmp_path, capsys):
    good = (tiny_run / "checkpoint.pt").read_bytes()
    for i, data in enumerate([b"this is not a checkpoint", good[: len(good) // 2]]):
        out = _copy_run(tiny_run, tmp_path / f"run{i}")
        (out / "checkpoint.pt").write_bytes(data)
        rc = train.main(["--out", str(out), "--resume"])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert "unreadable" in err and str(out / "checkpoint.pt") in err


def test_resume_errors_are_clear(tiny_run, tmp_path, capsys):
    assert train.main(["--out", str(tmp_path / "never-started"), "--resume"]) == 2
    assert "without --resume" in capsys.readouterr().err
    out = _copy_run(tiny_run, tmp_path / "run")
    assert train.main(["--out", str(out), "--resume", "--batch", "16"]) == 2
    assert "cannot change --batch" in capsys.readouterr().err


def test_bad_train_settings_exit_2(tiny_data, tmp_path, capsys):
    # dataset is 16 px, model asked for 32 px
    rc = train.main(["--data", str(tiny_data), "--out", str(tmp_path / "r"), "--size", "32", "--widths", "8,16",
                     "--emb-dim", "32", "--device", "cpu", "--steps", "1"])
    assert rc == 2 and "--size 16" in capsys.readouterr().err
    rc = train.main(train_args(tiny_data, tmp_path / "r2", 1, "--balance", "2"))
    assert rc == 2 and "--balance" in capsys.readouterr().err


def test_ctrl_c_saves_renders_one_grid_and_exits(tiny_data, tmp_path):
    run = tmp_path / "run"
    log = tmp_path / "run.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen([PYTHON, "-m", "sdtrain.train", *train_args(tiny_data, run, 100000, "--ckpt-every", "5")],
                                env=sub_env(), stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.time() + 120
            while not (run / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
                time.sleep(0.2)
            assert (run / "checkpoint.pt").exists(), log.read_text()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=60)  # it used to sample twice on the way out
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert rc == 0 and "interrupted: saving checkpoint" in text, text
    step = load_ckpt(run / "checkpoint.pt")["step"]
    assert step >= 5
    grids = sorted(p.name for p in run.glob("samples-*.png"))
    assert grids == [f"samples-{step:06d}.png"], grids
    assert is_png(run / "samples.png") and (run / "samples.png").read_bytes() == (run / grids[0]).read_bytes()


@pytest.mark.parametrize("style", ["cutmix", "paste"])
def test_mix_prob_puts_two_categories_together_with_context_by_opaque_share(tiny_data, tmp_path, style):
    def batch(prob: str, out: str):
        cfg = train.config_from_args(train.make_parser().parse_args(
            train_args(tiny_data, tmp_path / out, 2, "--mix-prob", prob, "--mix-style", style, "--cond-drop", "0",
                       "--batch", "64")))
        assert cfg.mix_style == style
        return train.Trainer(cfg).batch()

    x0, ctx, _, _ = batch("0", "plain")
    assert torch.equal(ctx.sum(dim=1), torch.ones(len(ctx))) and ((ctx > 0).sum(dim=1) == 1).all()
    x0, ctx, _, _ = batch("1", "mix")
    assert torch.allclose(ctx.sum(dim=1), torch.ones(len(ctx)))
    mixed = (ctx > 0).sum(dim=1) == 2
    assert mixed.float().mean() > 0.3  # rows whose partner has another category (about half of them here)
    for i in torch.nonzero(mixed).flatten().tolist():
        w = ctx[i][ctx[i] > 0]
        assert 0 < w.min() <= w.max() < 1
        # the weights are the two parts' shares of the composite's opaque pixels: a share of a whole number
        opaque = int((x0[i, 3] > 0).sum())
        assert abs(float(w.min()) * opaque - round(float(w.min()) * opaque)) < 1e-3
    assert train.main(train_args(tiny_data, tmp_path / "bad", 2, "--mix-prob", "1.5")) == 2


def test_category_weight_scales_a_categorys_share_of_each_batch(tiny_data, tmp_path, capsys):
    def share_of_discs(*extra: str) -> float:
        cfg = train.config_from_args(train.make_parser().parse_args(
            train_args(tiny_data, tmp_path / f"r{len(extra)}", 2, "--balance", "1", *extra)))
        trainer = train.Trainer(cfg)
        disc = trainer.categories.index("discs")
        w = trainer.sample_w.double()
        return float(w[trainer.labels == disc].sum() / w.sum())

    assert share_of_discs() == pytest.approx(0.5)  # balanced: the two categories half and half
    # discs x3 -> 3 parts of 4; saved with the run, so a resume keeps it
    assert share_of_discs("--category-weight", "discs=3") == pytest.approx(0.75)
    assert share_of_discs("--category-weight", "discs=3", "--category-weight", "squares=3") == pytest.approx(0.5)
    assert train.main(train_args(tiny_data, tmp_path / "w", 1, "--category-weight", "discs=3")) == 0
    assert json.loads((tmp_path / "w" / "config.json").read_text())["category_weights"] == {"discs": 3.0}
    for bad, says in (("dragons=2", "dragons"), ("discs=0", "positive factor"), ("discs", "NAME=FACTOR")):
        assert train.main(train_args(tiny_data, tmp_path / "bad", 1, "--category-weight", bad)) == 2
        err = capsys.readouterr().err
        assert says in err and ("discs, squares" in err if bad.startswith("dragons") else True)
