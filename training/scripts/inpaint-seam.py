#!/usr/bin/python3
"""Does an inpainted region show its seam? The shipped known-region replacement against RePaint-style
resampling, with the same sources, masks and sampling settings.

    PYTHONPATH=training /usr/bin/python3 training/scripts/inpaint-seam.py --model models/model.json \
        --data training/.cache/dcss-32.npz --categories character,monster,weapon --out runs/inpaint-seam

Sources are the dataset's held-out sprites of each category; the mask regenerates a centred box (half the
sprite's width and height). Seam score: the mean absolute difference of 4-neighbour pixel pairs that cross the
mask's edge, divided by that of pairs on one side of it (premultiplied RGB and alpha, bytes after the runtime's
alpha rule). Real sprites score a little above 1 with this mask (their centre holds the most detail); a region
that does not continue its surroundings scores higher. Rows:
- real: the source itself (the score of no seam);
- pasted: a fresh sprite of the category pasted into the box (a seam the score should catch);
- replace: the plugin's inpainting (after every step the kept pixels become the source noised to that step);
- repaint-U: the same, each step run U times, re-noised back to its start between runs (RePaint's resampling,
  U times the network runs).
Writes seam.json and a grid (rows as above, 4x).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sdtrain.dataset import load_dataset
from sdtrain.evaluate import clean_alpha, load_for_eval, to_float
from sdtrain.images import save_grid
from sdtrain.schedule import DDPMSchedule, guided_eps, plan_steps, sample


def seam_score(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per sprite: mean |difference| of neighbour pairs crossing the mask's edge over pairs that do not."""
    b = (x.clamp(-1, 1) + 1) * 127.5
    v = torch.cat([b[:, :3] * (b[:, 3:4] / 255), b[:, 3:4]], dim=1)
    m = mask[:, 0] > 0.5
    scores = []
    for dim in (2, 3):
        d = (v.narrow(dim, 1, v.shape[dim] - 1) - v.narrow(dim, 0, v.shape[dim] - 1)).abs().mean(dim=1)
        md = dim - 1
        cross = m.narrow(md, 1, m.shape[md] - 1) != m.narrow(md, 0, m.shape[md] - 1)
        scores.append((d, cross))
    cross_sum = sum((d * c).flatten(1).sum(1) for d, c in scores)
    cross_n = sum(c.flatten(1).sum(1) for _, c in scores)
    in_sum = sum((d * ~c).flatten(1).sum(1) for d, c in scores)
    in_n = sum((~c).flatten(1).sum(1) for _, c in scores)
    return (cross_sum / cross_n) / (in_sum / in_n).clamp_min(1e-6)


@torch.no_grad()
def repaint(model, sch: DDPMSchedule, ctx, init, mask, steps: int, guidance: float, eta: float, u: int,
            g: torch.Generator) -> torch.Tensor:
    """The plugin's DDIM inpainting loop with each step resampled u times (RePaint, jump length 1)."""
    B = ctx.shape[0]
    null = torch.zeros_like(ctx)

    def full(tt):
        return torch.full((B,), tt, dtype=torch.long)

    def eps_at(x, tt):
        tv = torch.full((B,), float(tt))
        both = model(torch.cat([x, x]), torch.cat([tv, tv]), torch.cat([ctx, null]))
        return guided_eps(both[:B], both[B:], guidance)

    x = torch.randn(init.shape, generator=g)
    for tt, prev in plan_steps(sch.T, "ddim", steps):
        runs = u if prev > 0 else 1  # the last step ends at t=0: nothing to resample
        for r in range(runs):
            z = torch.randn(init.shape, generator=g) if eta > 0 and prev > 0 else None
            xp = sch.ddim_step(x, full(tt), full(prev), eps_at(x, tt), clip_x0=True,
                               eta=eta if z is not None else 0.0, z=z)
            if prev > 0:
                xp = mask * xp + (1 - mask) * sch.add_noise(init, full(prev), torch.randn(init.shape, generator=g))
            if r + 1 < runs:
                ratio = sch.alpha_bar[tt] / sch.alpha_bar[prev]
                x = ratio.sqrt() * xp + (1 - ratio).sqrt() * torch.randn(init.shape, generator=g)
            else:
                x = xp
    x = mask * x + (1 - mask) * init
    return x.clamp(-1, 1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--categories", default="character,monster,weapon")
    p.add_argument("--n", type=int, default=32, help="sources per category (at most the held-out ones)")
    p.add_argument("--repaint", default="3", help="comma-separated resampling counts U to measure")
    p.add_argument("--out", default="runs/inpaint-seam")
    a = p.parse_args()
    m = load_for_eval(Path(a.model))
    model = m["model"].eval()
    names = m["categories"]
    smp = json.loads(Path(a.model).read_text()).get("sampling", {})
    steps, guidance, eta = smp.get("steps", 25), smp.get("guidance", 3.0), smp.get("eta", 1.0)
    sch = DDPMSchedule(m["schedule"])
    d = load_dataset(Path(a.data))
    x_all, y_all = to_float(d["images"]), torch.from_numpy(d["labels"])
    held = torch.from_numpy(d["held_out"])
    size = x_all.shape[-1]
    lo, hi = size // 4, size - size // 4
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    rows: dict[str, list] = {}
    for cat in a.categories.split(","):
        k = names.index(cat)
        init = clean_alpha(x_all[held & (y_all == k)][: a.n])
        B = init.shape[0]
        mask = torch.zeros(B, 1, size, size)
        mask[:, :, lo:hi, lo:hi] = 1
        ctx = torch.nn.functional.one_hot(torch.full((B,), k), len(names)).float()
        g = torch.Generator().manual_seed(7)
        fresh = sample(model, sch, ctx, size, init.shape[1], sampler="ddim", steps=steps, guidance=guidance,
                       generator=g, eta=eta)
        results = {"real": init, "pasted": clean_alpha(mask * fresh + (1 - mask) * init)}
        g = torch.Generator().manual_seed(7)
        results["replace"] = clean_alpha(sample(model, sch, ctx, size, init.shape[1], sampler="ddim", steps=steps,
                                                guidance=guidance, generator=g, eta=eta, init=init, mask=mask))
        for u in (int(v) for v in a.repaint.split(",") if v):
            g = torch.Generator().manual_seed(7)
            results[f"repaint-{u}"] = clean_alpha(repaint(model, sch, ctx, init, mask, steps, guidance, eta, u, g))
        report[cat] = {}
        for name, x in results.items():
            s = seam_score(x, mask)
            report[cat][name] = {"median": float(s.median()), "mean": float(s.mean()), "n": B}
            rows.setdefault(name, []).append(((x[:6] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
                                             .permute(0, 2, 3, 1).numpy())
            print(f"{cat:10s} {name:10s} seam score median {s.median():.2f} mean {s.mean():.2f} (n {B})", flush=True)
    names_order = list(rows)
    save_grid(np.concatenate([np.concatenate(rows[n]) for n in names_order]), len(names_order),
              out / "inpaint-seam.png", labels=names_order, scale=4)
    (out / "seam.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
