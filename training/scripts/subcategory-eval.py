#!/usr/bin/python3
"""One category of several models, scored side by side: models trained with that category split into
sub-categories (training/scripts/subclusters.py: `monster/0`, `monster/1`, ...) sample it as an equal
share of each sub-category; the others with the category itself.

    PYTHONPATH=training /usr/bin/python3 training/scripts/subcategory-eval.py --data training/.cache/dcss-32.npz \
        --category monster --n 64 --out runs/mon/eval models/model.json runs/mon/control runs/mon/sub4

A classifier trained on the dataset's own split (as in sdtrain.evaluate) gives: the share of the
generated sprites it calls the category; the Frechet distance of their features to the category's training
sprites (and of the category's held-out sprites, the real baseline); the median nearest-neighbour distance
to the training set relative to held-out real sprites. Writes eval.json and a grid (one row of 16 per model,
4x) to --out.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sdtrain.dataset import load_dataset
from sdtrain.evaluate import clean_alpha, embed, frechet, load_for_eval, nn_distance, to_float, train_classifier
from sdtrain.images import save_grid
from sdtrain.schedule import DDPMSchedule, sample


def contexts(categories: list[str], category: str, n: int) -> torch.Tensor:
    subs = [i for i, c in enumerate(categories) if c.startswith(category + "/")]
    cols = subs or [categories.index(category)]
    ctx = torch.zeros(n, len(categories))
    ctx[torch.arange(n), torch.tensor(cols).repeat(n // len(cols) + 1)[:n]] = 1
    return ctx


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+")
    p.add_argument("--data", required=True)
    p.add_argument("--category", required=True)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--eta", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    dev = torch.device("cpu")
    d = load_dataset(Path(a.data))
    names = list(d["categories"])
    c = names.index(a.category)
    x, y = to_float(d["images"]), torch.from_numpy(d["labels"])
    held = torch.from_numpy(d["held_out"])
    clf = train_classifier(x[~held], y[~held], len(names), dev, a.epochs, 0)
    x_tr = x[~held]
    f_cat, _ = embed(clf, x_tr[y[~held] == c], dev)
    f_ev, _ = embed(clf, x[held & (y == c)], dev)
    nn_real, _ = nn_distance(x[held & (y == c)], x_tr, dev)
    report = {"category": a.category, "real": {"frechet_heldout": frechet(f_ev, f_cat),
                                               "n_heldout": int((held & (y == c)).sum())}, "models": {}}
    rows = []
    for path in a.models:
        m = load_for_eval(Path(path))
        ctx = contexts(m["categories"], a.category, a.n)
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            xs = sample(m["model"].eval(), DDPMSchedule(m["schedule"]), ctx, m["model"].cfg.size,
                        m["model"].cfg.channels, sampler="ddim", steps=a.steps, guidance=a.guidance,
                        clip_x0=True, generator=g, eta=a.eta)
        xs = clean_alpha(xs)
        f, pred = embed(clf, xs, dev)
        nn, _ = nn_distance(xs, x_tr, dev)
        r = {"accuracy": float((pred == c).float().mean()), "frechet": frechet(f, f_cat),
             "nn_ratio": float(nn.median() / nn_real.median()),
             "contexts": sorted({m["categories"][int(i)] for i in ctx.argmax(1)})}
        report["models"][path] = r
        print(f"{path}: {a.category} accuracy {r['accuracy']:.3f}, Frechet {r['frechet']:.2f} "
              f"(held-out real {report['real']['frechet_heldout']:.2f}), NN ratio {r['nn_ratio']:.2f}", flush=True)
        rows.append(((xs[:16] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    save_grid(np.concatenate(rows), len(rows), out / f"{a.category}.png", labels=[Path(m).name if Path(m).is_dir()
              else str(Path(m).parent.name or m) for m in a.models], scale=4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
