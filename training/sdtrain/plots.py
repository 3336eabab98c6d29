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

        # The logged means, and a centred moving average over a tenth of them: no lag at either end.
        raw = [px(s, y) for s, y in zip(steps, ys)]
        d.line(raw, fill=(180, 200, 235), width=1)
        half = max(1, len(ys) // 20)
        sm = []
        for i, s in enumerate(steps):
            window = ys[max(0, i - half):i + half + 1]
            sm.append(px(s, sum(window) / len(window)))
        d.line(sm, fill=(30, 80, 200), width=2)
        # legend, top right
        lx, ly = W - R - 250, T + 8
        d.line([(lx, ly + 6), (lx + 20, ly + 6)], fill=(180, 200, 235), width=2)
        d.text((lx + 26, ly), f"mean of every {max(1, steps[1] - steps[0])} steps", fill=(60, 60, 60))
        d.line([(lx, ly + 22), (lx + 20, ly + 22)], fill=(30, 80, 200), width=2)
        d.text((lx + 26, ly + 16), f"centred average of {2 * half + 1} points", fill=(60, 60, 60))
        for frac in (0.0, 0.5, 1.0):
            y = lo + frac * (hi - lo)
            _, py = px(x0, y)
            d.text((4, py - 6), f"{10 ** y:.4f}", fill=(60, 60, 60))
        d.text((L, H - B + 8), f"step {x0}", fill=(60, 60, 60))
        d.text((W - R - 90, H - B + 8), f"step {x1}", fill=(60, 60, 60))
    d.rectangle([L, T, W - R, H - B], outline=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
