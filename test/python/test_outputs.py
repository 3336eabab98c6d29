"""What people look at: sample grids (labelled, scaled up for small sprites), the loss plot, the ETA."""
from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image
from sdtrain.images import grid_scale, save_grid
from sdtrain.plots import loss_curve
from sdtrain.progress import Progress


def sprites(n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = rng.integers(0, 255, (n, size, size, 4), dtype=np.uint8)
    out[..., 3] = 255
    return out


def test_grids_are_scaled_up_for_small_sprites_and_labelled_per_row(tmp_path):
    assert grid_scale(16) == 4 and grid_scale(32) == 2 and grid_scale(64) == 2 and grid_scale(8) == 8
    plain, labelled = tmp_path / "plain.png", tmp_path / "labelled.png"
    save_grid(sprites(6, 16), 2, plain)
    save_grid(sprites(6, 16), 2, labelled, labels=["blocks", "a-much-longer-name"])
    a, b = Image.open(plain), Image.open(labelled)
    assert a.size == ((3 * 18 + 2) * 4, (2 * 18 + 2) * 4), "16px sprites shown at 4x"
    assert b.height == a.height and b.width > a.width + 60, "a label column on the left"
    # the sprites are the same pixels, shifted right by the label column
    assert np.array_equal(np.asarray(b)[:, b.width - a.width:], np.asarray(a))
    # each row's label is drawn (light text pixels) beside its own row, the second one wider
    col = np.asarray(b.convert("L"))[:, : b.width - a.width]
    row_h = 18 * 4
    first = np.argwhere(col[: row_h + 8] > 150)
    second = np.argwhere(col[row_h + 8:] > 150)
    assert len(first) and len(second)
    assert second[:, 1].max() > first[:, 1].max() + 20


def test_the_loss_plot_has_a_legend_and_a_smoothed_line_that_does_not_lag(tmp_path):
    steps = list(range(25, 525, 25))
    losses = [0.5 if s <= 250 else 0.1 for s in steps]  # a step down halfway
    path = tmp_path / "loss.png"
    loss_curve(steps, losses, path)
    im = np.asarray(Image.open(path).convert("RGB")).astype(int)
    dark = (np.abs(im - [30, 80, 200]).sum(axis=2) < 30)
    # the smoothed line reaches the low plateau well before the last step (an EMA would still be high)
    ys = np.argwhere(dark[:, 500:620])[:, 0]
    assert ys.max() > 250, "the end of the smoothed line sits at the low plateau"
    legend = np.asarray(Image.open(path).convert("L"))[30:70, 380:620]
    assert (legend < 120).sum() > 50, "legend text in the top right"


def test_the_eta_honours_a_time_limit():
    bar = Progress(1000, "train", stream=io.StringIO())
    bar.t0 = time.time() - 10
    bar.n = 10  # 1 step/s: 990 s by the steps
    assert "<16:30" in bar.line()
    bar.deadline = time.time() + 60
    assert "<01:00" in bar.line() or "<00:59" in bar.line()
