"""Shared fixture builders for the training (sdtrain) tests.

Everything here is tiny on purpose: the machine running CI may have two CPU cores.
No test reads ../shared or training/.cache; every image is drawn here with PIL/numpy
inside a pytest temporary directory.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TRAINING = REPO / "training"
PYTHON = sys.executable  # run-all.mjs runs pytest with Debian's /usr/bin/python3 (or $PYTHON)

# One intra-op thread keeps CPU results bitwise reproducible across processes and is
# kind to a shared two-core machine. Subprocesses get the same through OMP_NUM_THREADS.
torch.set_num_threads(1)

# Tiny model/training settings shared by the training, resume, export and DDP tests.
TINY_SIZE = 16
TINY_MODEL_ARGS = ["--size", str(TINY_SIZE), "--widths", "8,16", "--emb-dim", "32"]


def sub_env(**extra: str) -> Dict[str, str]:
    """Environment for `python -m sdtrain.*` subprocesses."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(TRAINING), env.get("PYTHONPATH", "")] if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- images -------------------------------------------------------------------------------

def blank(h: int, w: Optional[int] = None) -> np.ndarray:
    return np.zeros((h, w or h, 4), dtype=np.uint8)


def rect_sprite(size: int, color: Sequence[int], box: Sequence[int]) -> np.ndarray:
    """Transparent size x size canvas with an opaque rectangle box = (y0, x0, y1, x1)."""
    img = blank(size)
    y0, x0, y1, x1 = box
    img[y0:y1, x0:x1, :3] = color
    img[y0:y1, x0:x1, 3] = 255
    return img


def disc_sprite(size: int, color: Sequence[int], radius: float, centre: Optional[Sequence[float]] = None) -> np.ndarray:
    cy, cx = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    yy, xx = np.mgrid[0:size, 0:size]
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    img = blank(size)
    img[mask, :3] = color
    img[mask, 3] = 255
    return img


def save_png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, "RGBA").save(path)
    return path


def unique_sprites(n: int, size: int = 16, seed: int = 0, opaque_box: Optional[Sequence[int]] = None) -> List[np.ndarray]:
    """n distinct sprites: a rectangle whose colour encodes the index (so every one is unique)."""
    out = []
    box = opaque_box or (size // 4, size // 4, size - size // 4, size - size // 4)
    for i in range(n):
        color = (10 + (i * 37 + seed * 101) % 240, 20 + (i * 11 + seed * 53) % 230, 30 + i % 200)
        img = rect_sprite(size, color, box)
        img[box[0], box[1], :3] = (i % 256, (i // 256 + seed) % 256, 7)  # guarantee uniqueness
        out.append(img)
    return out


def write_folder_dataset(root: Path, categories: Dict[str, Iterable[np.ndarray]]) -> Path:
    """root/<category>/<index>.png for each sprite."""
    for cat, imgs in categories.items():
        (root / cat).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(imgs):
            save_png(root / cat / f"{i:03d}.png", img)
    return root


def build(argv: List[str]) -> int:
    from sdtrain import dataset
    return dataset.main(argv)


def synthetic_two_category(root: Path, size: int = TINY_SIZE, per_cat: int = 12) -> Path:
    """Two easy categories: red squares of several sizes and blue discs of several radii."""
    squares, discs = [], []
    for i in range(per_cat):
        s = 4 + i % 6
        off = (size - s) // 2 + (i // 6) - 1
        squares.append(rect_sprite(size, (220, 40 + i * 5, 40), (off, off, off + s, off + s)))
        discs.append(disc_sprite(size, (40, 60 + i * 5, 220), 2.5 + (i % 6) * 0.8))
    return write_folder_dataset(root, {"discs": discs, "squares": squares})


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A built .npz of the two synthetic categories at the tiny size (shared, read-only)."""
    root = tmp_path_factory.mktemp("tiny-data")
    src = synthetic_two_category(root / "src")
    out = root / "tiny.npz"
    assert build(["--folder", str(src), "--size", str(TINY_SIZE), "--out", str(out)]) == 0
    return out


def train_args(data: Path, out: Path, steps: int, *extra: str) -> List[str]:
    return ["--data", str(data), "--out", str(out), "--steps", str(steps), "--batch", "8",
            *TINY_MODEL_ARGS, "--device", "cpu", "--sample-every", "0", *extra]


@pytest.fixture(autouse=True)
def _restore_sigterm():
    """Trainer.run installs a SIGTERM handler; keep the pytest process's own one."""
    old = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, old)


def is_png(path: Path) -> bool:
    if not path.is_file() or path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    with Image.open(path) as im:
        im.load()
        return im.width > 0 and im.height > 0


TINY_RUN_STEPS = 125


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """A short in-process training run on the synthetic data (shared by training and export tests).

    Read-only for tests: copy what you want to modify.
    """
    from sdtrain import train
    out = tmp_path_factory.mktemp("tiny-run") / "run"
    old = signal.getsignal(signal.SIGTERM)
    try:
        rc = train.main(train_args(tiny_data, out, TINY_RUN_STEPS, "--lr", "3e-3", "--warmup", "5",
                                   "--min-snr-gamma", "0", "--ckpt-every", "50"))
    finally:
        signal.signal(signal.SIGTERM, old)
    assert rc == 0, "tiny training run failed"
    return out


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)
