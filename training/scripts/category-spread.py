"""How spread out each category of a built dataset is, and how often the trainer shows each sprite.

    PYTHONPATH=training /usr/bin/python3 training/scripts/category-spread.py --data training/.cache/dcss-32.npz

Prints one markdown row per category (training split): sprites, opaque share, the mean distance between two
sprites, the mean distance from a sprite to its nearest other sprite of the category, their ratio, and the
share of each batch the trainer gives the category (with --balance / --category-weight as the trainer reads
them) with its per-sprite exposure relative to a uniform draw over all training sprites. Distances are L2 over
premultiplied RGBA in 0..1. A category whose sprites sit far from each other (a high nearest distance) gives a
model few neighbours to learn a shape from.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, Optional, Sequence

import numpy as np

from sdtrain.dataset import load_dataset
from sdtrain.train import category_shares, parse_category_weights


def spread(sprites: np.ndarray) -> Dict[str, float]:
    """Mean pairwise and mean nearest-neighbour L2 distance of uint8 RGBA sprites [N, H, W, 4] (N >= 2)."""
    x = sprites.astype(np.float64) / 255.0
    flat = np.concatenate([x[..., :3] * x[..., 3:], x[..., 3:]], axis=-1).reshape(len(x), -1)
    sq = (flat ** 2).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T, 0.0))
    off = ~np.eye(len(x), dtype=bool)
    nearest = np.where(off, d, np.inf).min(axis=1)
    return {"pair": float(d[off].mean()), "nearest": float(nearest.mean()), "opaque": float(x[..., 3].mean())}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="training/.cache/dcss-32.npz")
    ap.add_argument("--balance", type=float, default=0.5)
    ap.add_argument("--category-weight", action="append", default=[], metavar="NAME=FACTOR")
    a = ap.parse_args(argv)
    data = load_dataset(a.data)
    names = list(data["categories"])
    keep = ~data["held_out"]
    images, labels = data["images"][keep], data["labels"][keep]
    weights = parse_category_weights(a.category_weight)
    counts = np.bincount(labels, minlength=len(names))
    shares = category_shares(counts, a.balance, weights, names)
    print("| category | sprites | opaque | mean distance | nearest other | nearest / mean | batch share | per sprite |")
    print("|---|---|---|---|---|---|---|---|")
    for i, name in enumerate(names):
        if counts[i] < 2:
            continue
        s = spread(images[labels == i])
        exposure = shares[i] * counts.sum() / counts[i]
        print(f"| {name} | {counts[i]} | {s['opaque']:.2f} | {s['pair']:.1f} | {s['nearest']:.1f} | "
              f"{s['nearest'] / s['pair']:.2f} | {shares[i]:.3f} | {exposure:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
