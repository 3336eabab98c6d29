#!/usr/bin/python3
"""Held-out denoising loss of trained runs: a cheap, low-noise way to compare short fine-tunes.

    PYTHONPATH=training /usr/bin/python3 training/scripts/heldout-loss.py --data D.npz runs/a runs/b ...

For every held-out sprite of the dataset, the same timesteps (25..475) and the same noise draws, the
mean squared error of each run's EMA network's conditional noise prediction. Lower is better; the
figures compare between runs on the same dataset only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from sdtrain.dataset import load_dataset
from sdtrain.evaluate import load_for_eval, to_float
from sdtrain.schedule import DDPMSchedule, ScheduleConfig

TIMESTEPS = (25, 100, 200, 300, 400, 475)
DRAWS = 4


@torch.no_grad()
def heldout_loss(model, x0: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    ab = DDPMSchedule(ScheduleConfig()).alpha_bar.float()
    g = torch.Generator().manual_seed(0)
    ctx = torch.nn.functional.one_hot(labels, k).float()
    total, n = 0.0, 0
    for _ in range(DRAWS):
        for t in TIMESTEPS:
            noise = torch.randn(x0.shape, generator=g)
            a = ab[t]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
            pred = model(xt, torch.full((len(x0),), float(t)), ctx)
            total += float(((pred - noise) ** 2).mean()) * len(x0)
            n += len(x0)
    return total / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset .npz (its held-out split is used)")
    p.add_argument("runs", nargs="+", help="run folders, checkpoint.pt files or model.json files")
    a = p.parse_args()
    d = load_dataset(Path(a.data))
    held = d["held_out"]
    x0 = to_float(d["images"][held])
    labels = torch.from_numpy(d["labels"][held])
    for run in a.runs:
        m = load_for_eval(Path(run))
        if m["categories"] != d["categories"]:
            print(f"{run}: categories {m['categories']} are not the dataset's {d['categories']}", file=sys.stderr)
            return 2
        print(f"{run}: held-out loss {heldout_loss(m['model'].eval(), x0, labels, len(d['categories'])):.4f} "
              f"({len(x0)} sprites x {len(TIMESTEPS)} timesteps x {DRAWS} draws; step {m['steps']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
