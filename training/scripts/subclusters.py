#!/usr/bin/python3
"""Split one category of a built dataset into k sub-categories (k-means on small RGBA thumbnails), as
extra internal context for a category too diverse for one context (DCSS monsters: 953 sprites).

    PYTHONPATH=training /usr/bin/python3 training/scripts/subclusters.py \
        --data training/.cache/dcss-32.npz --category monster --k 4 --out training/.cache/dcss-32-monster4.npz

The sub-categories are named `<category>/<i>` and take the category's place in the list; the held-out
split is kept. Fine-tuning with `--init-from` starts each from the category's own context column.
Writes a PNG of each sub-category's first sprites beside the dataset.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sdtrain.dataset import load_dataset, save_dataset
from sdtrain.images import save_grid


def thumbnails(images: np.ndarray, size: int = 8) -> torch.Tensor:
    """[N, H, W, 4] uint8 -> [N, 4*size*size]: colour premultiplied by alpha, then alpha, area-averaged."""
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2) / 255.0
    x = torch.cat([x[:, :3] * x[:, 3:], x[:, 3:]], dim=1)
    return F.adaptive_avg_pool2d(x, size).flatten(1)


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 50) -> torch.Tensor:
    """Cluster labels (k-means++ start, Lloyd iterations), deterministic for a seed."""
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, k):
        d = torch.cdist(x, centres).min(1).values ** 2
        centres = torch.cat([centres, x[torch.multinomial(d / d.sum(), 1, generator=g)]])
    for _ in range(iters):
        lab = torch.cdist(x, centres).argmin(1)
        new = torch.stack([x[lab == j].mean(0) if (lab == j).any() else centres[j] for j in range(k)])
        if torch.allclose(new, centres):
            break
        centres = new
    return torch.cdist(x, centres).argmin(1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--category", required=True)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    d = load_dataset(Path(a.data))
    names = list(d["categories"])
    if a.category not in names:
        raise SystemExit(f"error: --category {a.category!r} is not one of {', '.join(names)}")
    c = names.index(a.category)
    sel = np.nonzero(d["labels"] == c)[0]
    sub = kmeans(thumbnails(d["images"][sel]), a.k, a.seed).numpy()
    # order the sub-categories by size, largest first, so the names are stable across seeds
    order = np.argsort(-np.bincount(sub, minlength=a.k), kind="stable")
    rank = np.empty(a.k, int)
    rank[order] = np.arange(a.k)
    sub = rank[sub]
    new_names = names[:c] + [f"{a.category}/{i}" for i in range(a.k)] + names[c + 1:]
    labels = d["labels"].copy()
    labels[labels > c] += a.k - 1
    labels[sel] = c + sub
    manifest = dict(d["manifest"])
    manifest["subclusters"] = {"source": a.data, "category": a.category, "k": a.k, "seed": a.seed,
                               "counts": {f"{a.category}/{i}": int((sub == i).sum()) for i in range(a.k)}}
    out = Path(a.out)
    save_dataset(out, d["images"], labels, d["held_out"], new_names, manifest)
    rows = np.concatenate([d["images"][sel[sub == i]][:12] for i in range(a.k)])
    save_grid(rows, a.k, out.with_suffix(".png"), labels=[f"{a.category}/{i}" for i in range(a.k)])
    print(json.dumps(manifest["subclusters"]["counts"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
