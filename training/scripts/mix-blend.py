#!/usr/bin/python3
"""How category mixes read to an independent classifier: mixing the context inputs (today), alternating
the conditions step by step, switching once (the first category's share of the steps, then the second's),
composing the conditional noise predictions, composing them by region (the first category's prediction on
top, the second's below, a soft edge at the mix's weights), or drawing the mix as its parts ("parts", the
plugin's `compose`, plugin/src/sampler/compose.ts: the heavier category's sprite with the other's pasted on
it, scaled by its weight, then the last 12% of the steps over the composite with the heavier category).

    PYTHONPATH=training /usr/bin/python3 training/scripts/mix-blend.py --model models/model.json \
        --data training/.cache/dcss-32.npz --mix monster=0.5,potion=0.5 --mix monster=0.5,weapon=0.5 \
        --n 64 --out runs/mix-blend

For each mix and method: the share of sprites the classifier (trained on the dataset's own split, as in
sdtrain.evaluate) calls the first category, the second, neither; and "both": its two largest
probabilities are the mix's categories, each at least 0.2. The first row of each mix,
"real composites", scores real art that shows both: a held-out sprite of the first category with a held-out
sprite of the second pasted on it (sdtrain.mixing's paste: the whole sprite at 40-75% of the canvas), the
reference for what "both" can reach with this classifier. --model may repeat (NAME=PATH) to score several
models with one classifier. Writes a grid per model and method (rows = mixes).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sdtrain.dataset import load_dataset
from sdtrain.evaluate import clean_alpha, load_for_eval, to_float, train_classifier
from sdtrain.images import save_grid
from sdtrain.mixing import paste_layer, put_over
from sdtrain.schedule import DDPMSchedule, sample


def switched(weights: list[float], steps: int) -> list[int]:
    """Which component each step uses: the components in the mix's order, each for its share of the steps
    in one block (the first sets the shape in the early steps, the last the detail)."""
    out = []
    acc = 0.0
    for k, w in enumerate(weights):
        acc += w
        out += [k] * (round(acc * steps) - len(out))
    return out + [len(weights) - 1] * (steps - len(out))


def alternating(weights: list[float], steps: int) -> list[int]:
    """Which component each step uses: every component in proportion to its weight, spread evenly."""
    acc = [0.0] * len(weights)
    used = [0] * len(weights)
    out = []
    for _ in range(steps):
        for k, w in enumerate(weights):
            acc[k] += w
        k = max(range(len(weights)), key=lambda j: acc[j] - used[j])
        used[k] += 1
        out.append(k)
    return out


class Composed(torch.nn.Module):
    """eps(x, t, sum_k w_k e_k) := sum_k w_k eps(x, t, e_k) for conditional rows; zero rows pass through."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.cfg = model.cfg

    def forward(self, x, t, ctx):
        out = torch.zeros_like(x)
        null = ctx.abs().sum(dim=1) == 0
        if null.any():
            out[null] = self.model(x[null], t[null], ctx[null])
        for k in range(ctx.shape[1]):
            w = ctx[:, k]
            rows = (w != 0) & ~null
            if rows.any():
                onehot = torch.zeros_like(ctx[rows])
                onehot[:, k] = 1
                out[rows] += w[rows].view(-1, 1, 1, 1) * self.model(x[rows], t[rows], onehot)
        return out


class Regions(torch.nn.Module):
    """Two-category mixes by region: eps := m eps(x, t, e_a) + (1 - m) eps(x, t, e_b), m a soft top-to-bottom
    ramp placed at the mix's weights, a = the mix's first category (on top); zero rows pass through."""

    def __init__(self, model: torch.nn.Module, order: list[int]):
        super().__init__()
        self.model = model
        self.cfg = model.cfg
        self.a, self.b = order

    def forward(self, x, t, ctx):
        out = torch.zeros_like(x)
        null = ctx.abs().sum(dim=1) == 0
        if null.any():
            out[null] = self.model(x[null], t[null], ctx[null])
        rows = ~null
        if rows.any():
            c = ctx[rows]
            first = torch.full((c.shape[0],), self.a)
            second = torch.full((c.shape[0],), self.b)
            w_first = c[:, self.a] / (c[:, self.a] + c[:, self.b])
            H = x.shape[2]
            y = (torch.arange(H, dtype=x.dtype) + 0.5) / H
            m = torch.sigmoid((w_first[:, None] - y[None, :]) * 12).view(-1, 1, H, 1)
            oh = torch.nn.functional.one_hot
            ea = self.model(x[rows], t[rows], oh(first, c.shape[1]).to(x.dtype))
            eb = self.model(x[rows], t[rows], oh(second, c.shape[1]).to(x.dtype))
            out[rows] = m * ea + (1 - m) * eb
        return out


COMPOSE_STRENGTH = 0.12  # plugin/src/sampler/compose.ts


def drawn_as_parts(model, sch, idx: list, w: torch.Tensor, n: int, k: int, g: torch.Generator, **kw) -> torch.Tensor:
    """The plugin's `compose` for a two-category mix: the heavier category (ties: the lower index) drawn,
    the other drawn and pasted on it (its opaque box, longer side 0.35 + 0.6 * its share of the two
    weights of the canvas, at a random place), then the last COMPOSE_STRENGTH of the steps over the
    composite with the heavier category. The same recipe as the TypeScript, not its exact noise."""
    order = sorted(range(2), key=lambda j: (-float(w[j]), idx[j]))
    base, part = idx[order[0]], idx[order[1]]
    share = float(w[order[1]] / (w[0] + w[1]))
    one = torch.nn.functional.one_hot
    ctx_base = one(torch.full((n,), base), k).float()
    xa = clean_alpha(sample(model, sch, ctx_base, model.cfg.size, model.cfg.channels, generator=g, **kw))
    xb = clean_alpha(sample(model, sch, one(torch.full((n,), part), k).float(), model.cfg.size,
                            model.cfg.channels, generator=g, **kw))
    scale = 0.35 + 0.6 * share
    comp, _ = put_over(xa, *paste_layer(xb, g, scale, scale))
    return sample(model, sch, ctx_base, model.cfg.size, model.cfg.channels, generator=g, init=comp,
                  strength=COMPOSE_STRENGTH, **kw)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True,
                   help="a model.json or run; NAME=PATH names it in the report (repeat to compare models)")
    p.add_argument("--data", required=True)
    p.add_argument("--mix", action="append", required=True, help="a=w,b=w (two categories)")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--eta", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=15, help="the classifier's training epochs")
    p.add_argument("--out", default="runs/mix-blend")
    p.add_argument("--methods", default="inputs,alternating,switched,composed,regions,parts",
                   help="comma-separated subset (each model)")
    a = p.parse_args()
    torch.manual_seed(0)
    models = {}
    for spec in a.model:
        label, _, path = spec.rpartition("=")
        m = load_for_eval(Path(path))
        models[label or Path(path).parent.name] = m
    names = next(iter(models.values()))["categories"]
    if any(m["categories"] != names for m in models.values()):
        raise SystemExit("mix-blend: the models have different categories; compare models of one dataset")
    d = load_dataset(Path(a.data))
    x_all, y_all = to_float(d["images"]), torch.from_numpy(d["labels"])
    held = torch.from_numpy(d["held_out"])
    k = len(names)
    clf = train_classifier(x_all[~held], y_all[~held], k, torch.device("cpu"), a.epochs, 0).eval()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    @torch.no_grad()
    def score(x: torch.Tensor, idx: list) -> dict:
        prob = torch.softmax(clf(x), dim=1)
        top = prob.argmax(dim=1)
        top2 = prob.topk(2, dim=1)
        both = ((top2.indices.sort(dim=1).values == torch.tensor(sorted(idx))).all(dim=1)
                & (top2.values[:, 1] >= 0.2))
        return {names[idx[0]]: float((top == idx[0]).float().mean()), names[idx[1]]: float((top == idx[1]).float().mean()),
                "neither": float(((top != idx[0]) & (top != idx[1])).float().mean()),
                "both": float(both.float().mean())}

    xh, yh = x_all[held], y_all[held]
    report = {}
    grids: dict[str, list] = {}
    for mix in a.mix:
        parts = [(kv.split("=")[0], float(kv.split("=")[1])) for kv in mix.split(",")]
        idx = [names.index(c) for c, _ in parts]
        w = torch.tensor([v for _, v in parts])
        w = w / w.sum()
        ctx = torch.zeros(a.n, k)
        ctx[:, idx] = w
        report[mix] = {}
        # real composites of the pair: a held-out sprite of the first category with one of the second pasted on
        g = torch.Generator().manual_seed(7)
        pick = [torch.nonzero(yh == i).flatten() for i in idx]
        xa = xh[pick[0][torch.randint(len(pick[0]), (a.n,), generator=g)]]
        xb = xh[pick[1][torch.randint(len(pick[1]), (a.n,), generator=g)]]
        real, _ = put_over(xa, *paste_layer(xb, g))
        runs = [("real composites", real)]
        order = alternating(w.tolist(), a.steps)
        blocks = switched(w.tolist(), a.steps)
        for label, m in models.items():
            model = m["model"].eval()
            sch = DDPMSchedule(m["schedule"])
            methods = {
                "inputs": (model, None),
                "alternating": (model, lambda i: torch.nn.functional.one_hot(
                    torch.full((a.n,), idx[order[i]]), k).float()),
                "switched": (model, lambda i: torch.nn.functional.one_hot(
                    torch.full((a.n,), idx[blocks[i]]), k).float()),
                "composed": (Composed(model), None),
                "regions": (Regions(model, idx), None),
            }
            for name in a.methods.split(","):
                g = torch.Generator().manual_seed(7)
                kw = dict(sampler="ddim", steps=a.steps, guidance=a.guidance, eta=a.eta)
                with torch.no_grad():
                    if name == "parts":
                        x = drawn_as_parts(model, sch, idx, w, a.n, k, g, **kw)
                    else:
                        net, at = methods[name]
                        x = sample(net, sch, ctx, model.cfg.size, model.cfg.channels, generator=g, context_at=at,
                                   **kw)
                runs.append((f"{label} {name}" if len(models) > 1 else name, clean_alpha(x)))
        for name, x in runs:
            r = score(x, idx)
            report[mix][name] = r
            print(f"{mix:28s} {name:24s} " + "  ".join(f"{key} {v:.2f}" for key, v in r.items()), flush=True)
            u8 = ((x[:8] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
            grids.setdefault(name, []).append(u8)
    for name, rows in grids.items():
        save_grid(np.concatenate(rows), len(rows), out / f"mix-{name.replace(' ', '-')}.png", labels=a.mix, scale=4)
    (out / "mix-blend.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
