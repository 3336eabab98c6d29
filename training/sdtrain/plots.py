"""PNG plots without matplotlib: a loss curve drawn with PIL."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw


def loss_curve(steps: Sequence[int], losses: Sequence[float], path: Path, title: str = "training loss") -> None:
    W, H, L, R, T, B = 640, 360, 60, 20, 30, 40
    im = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.text((L, 8), title, fill=(0, 0, 0))
    if len(steps) >= 2:
        ys = [math.log10(max(v, 1e-8)) for v in losses]
        lo, hi = min(ys), max(ys)
        if hi - lo < 1e-6:
            hi = lo + 1e-6
        x0, x1 = steps[0], steps[-1] if steps[-1] > steps[0] else steps[0] + 1

        def px(s, y):
            return (L + (s - x0) / (x1 - x0) * (W - L - R), T + (hi - y) / (hi - lo) * (H - T - B))

        # smoothed curve (EMA) over raw points
        raw = [px(s, y) for s, y in zip(steps, ys)]
        d.line(raw, fill=(180, 200, 235), width=1)
        sm, acc = [], ys[0]
        for s, y in zip(steps, ys):
            acc = 0.9 * acc + 0.1 * y
            sm.append(px(s, acc))
        d.line(sm, fill=(30, 80, 200), width=2)
        for frac in (0.0, 0.5, 1.0):
            y = lo + frac * (hi - lo)
            _, py = px(x0, y)
            d.text((4, py - 6), f"{10 ** y:.4f}", fill=(60, 60, 60))
        d.text((L, H - B + 8), f"step {x0}", fill=(60, 60, 60))
        d.text((W - R - 90, H - B + 8), f"step {x1}", fill=(60, 60, 60))
    d.rectangle([L, T, W - R, H - B], outline=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
