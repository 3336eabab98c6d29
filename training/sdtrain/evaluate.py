"""Evaluate a trained model against held-out real sprites.

    npm run evaluate -- --run runs/dcss32 --per-category 64 --out models/eval
    npm run evaluate -- --run models/model.json --settings ddim25-g3 --also models/fast/model.json=ddim25

--run takes a run directory, a checkpoint.pt or an exported model.json (the network is rebuilt
from its model.onnx). --also adds more models, each with its own settings, scored by the same
classifier in the same run, so their figures compare side by side. A model trained at the art's native size (16px) is scored against a
dataset of the same sprites scaled up by a whole factor (`npm run dataset -- --size 32 --upscale 2`): its
sprites are scaled up the same way first, so native and upscaled training compare with one classifier.

1. Trains a small classifier on the training split (reports its held-out accuracy).
2. Generates --per-category sprites per category with each requested sampler setting (the model's
   opaque categories with their alpha known, as the runtime samples them).
3. Reports, per setting: (a) the classifier's accuracy on generated sprites next to its
   accuracy on held-out real ones; (b) the Frechet distance in the classifier's feature
   space, generated vs train next to held-out real vs train, overall and per category; (c) nearest-neighbour pixel
   distance to the training set, generated relative to held-out real (copies score ~0);
   (d) copies: the share of generated sprites whose distance to their nearest training sprite, divided by
   the mean distance to their 10 nearest, is lower than for 95% of real sprites (so real ones score 0.05);
   `near_copies_share` is the plain-distance rule (closer than 95% of held-out real sprites), which also
   flags smooth textures that copy nothing; (e) the share of half-transparent pixels (alpha 10..90%)
   before alpha cleaning.
Writes eval.json, a sample grid per setting, a nearest-neighbour PNG and, where any are flagged, a
copies PNG (each flagged sprite above the training sprite it copies).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .dataset import load_dataset
from .export import build_model, checkpoint_opaque, load_run
from .images import save_grid
from .progress import Progress
from .quantize import fake_quant_fp16, fake_quant_int8
from .schedule import DDPMSchedule, ScheduleConfig, sample
from .teacher import TeacherError, load_teacher
from .threads import use_all_cores


class Classifier(nn.Module):
    def __init__(self, k: int, ch: int = 4):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU(),
                                 nn.Conv2d(o, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU())
        self.f = nn.Sequential(block(ch, 32), nn.AvgPool2d(2), block(32, 64), nn.AvgPool2d(2), block(64, 128))
        self.head = nn.Linear(128, k)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# neighbours in the copy rule's denominator: few enough that a small set's clusters (one shape in several
# colours) still stand out, as in the flagged grids of training/README.md
COPY_NEIGHBOURS = 10


def to_float(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def clean_alpha(x: torch.Tensor) -> torch.Tensor:
    """The runtime's pixel rule: quantise to bytes, binary alpha at 128, RGB 0 where transparent."""
    b = ((x.clamp(-1, 1) + 1) * 127.5).round()
    opaque = (b[:, 3:4] >= 128).float()
    b = torch.cat([b[:, :3] * opaque, opaque * 255], dim=1)
    return b / 127.5 - 1.0


def train_classifier(x: torch.Tensor, y: torch.Tensor, k: int, device: torch.device, epochs: int,
                     seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    clf = Classifier(k, x.shape[1]).to(device)
    opt = torch.optim.AdamW(clf.parameters(), lr=2e-3, weight_decay=0.05)
    n, bs = len(x), 128
    steps = epochs * ((n + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    counts = torch.bincount(y, minlength=k).float()
    weight = (counts.sum() / (k * counts.clamp(min=1))).to(device)
    bar = Progress(steps, "classifier", unit="step")
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = x[idx].to(device), y[idx].to(device)
            flip = torch.rand(len(idx), generator=g).to(device) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(clf(xb), yb, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1, postfix=f"loss {loss.item():.3f}")
    bar.close()
    return clf.eval()


@torch.no_grad()
def embed(clf: Classifier, x: torch.Tensor, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    feats, preds = [], []
    for i in range(0, len(x), 256):
        f = clf.features(x[i:i + 256].to(device))
        feats.append(f.double().cpu())
        preds.append(clf.head(f).argmax(1).cpu())
    return torch.cat(feats), torch.cat(preds)


def _weighted_stats(a: torch.Tensor, w: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of the rows of a, each row weighted by w (None: equal weights, as torch.cov)."""
    if w is None:
        return a.mean(0), torch.cov(a.T)
    w = w.to(a.dtype) / w.sum()
    mu = (w[:, None] * a).sum(0)
    c = a - mu
    # reliability weights: with equal weights this is the unbiased covariance torch.cov gives
    return mu, (w[:, None] * c).T @ c / (1.0 - (w ** 2).sum())


def frechet(a: torch.Tensor, b: torch.Tensor, wa: Optional[torch.Tensor] = None,
            wb: Optional[torch.Tensor] = None) -> float:
    """Frechet distance between two sets of feature rows, each optionally weighted per row."""
    mu1, s1 = _weighted_stats(a, wa)
    mu2, s2 = _weighted_stats(b, wb)
    w, v = torch.linalg.eigh(s1)
    r1 = (v * w.clamp(min=0).sqrt()) @ v.T
    m = r1 @ s2 @ r1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt)


def balanced_weights(y: torch.Tensor, k: int) -> torch.Tensor:
    """Per-row weights that give each of the k categories present in y the same total mass."""
    counts = torch.bincount(y, minlength=k).to(torch.float64)
    present = int((counts > 0).sum())
    return 1.0 / (counts[y] * present)


def frechet_balanced(f: torch.Tensor, y: torch.Tensor, f_ref: torch.Tensor, y_ref: torch.Tensor, k: int) -> float:
    """Frechet distance with every category weighted equally on both sides.

    The evaluator draws the same number of sprites per category, while the training split holds categories at
    their natural frequencies (858 monsters, 33 food): compared unweighted, even training sprites drawn 64 per
    category score far from the training set. Weighting both sides to one mass per category measures the
    sprites, not the category mix.
    """
    return frechet(f, f_ref, balanced_weights(y, k), balanced_weights(y_ref, k))


def frechet_per_category(f: torch.Tensor, y: torch.Tensor, f_ref: torch.Tensor, y_ref: torch.Tensor,
                         names: Sequence[str]) -> Dict[str, Optional[float]]:
    """Each category's features against the reference's of the same category; None where either side has
    fewer than two sprites (no covariance). With few sprites a category's figure is biased upward: compare
    it between models scored in one run, not with the overall figure."""
    out: Dict[str, Optional[float]] = {}
    for i, n in enumerate(names):
        a, b = f[y == i], f_ref[y_ref == i]
        out[n] = frechet(a, b) if len(a) > 1 and len(b) > 1 else None
    return out


@torch.no_grad()
def nearest(q: torch.Tensor, ref: torch.Tensor, device: torch.device, k: int = 1,
            exclude_self: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per query: the L2 distances (per pixel-channel RMS) to its k nearest ref sprites, counting horizontal
    flips, nearest first, and their indices ([N, k] each). `exclude_self`: q is ref, each sprite is compared
    with the others (leave one out)."""
    r = ref.flatten(1).to(device)
    rf = ref.flip(3).flatten(1).to(device)
    dist, idx = [], []
    for i in range(0, len(q), 128):
        qq = q[i:i + 128].flatten(1).to(device)
        d = torch.minimum(torch.cdist(qq, r), torch.cdist(qq, rf))
        if exclude_self:
            d[torch.arange(len(qq)), torch.arange(i, i + len(qq))] = float("inf")
        s, j = d.topk(min(k, d.shape[1]), dim=1, largest=False)
        dist.append(s.cpu() / q[0].numel() ** 0.5)
        idx.append(j.cpu())
    return torch.cat(dist), torch.cat(idx)


def nn_distance(q: torch.Tensor, ref: torch.Tensor, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per query: min L2 distance (per pixel-channel RMS) to ref, counting horizontal flips; and its index."""
    d, j = nearest(q, ref, device)
    return d[:, 0], j[:, 0]


def ratio_of(d: torch.Tensor) -> torch.Tensor:
    """The copy ratio from `nearest`'s distances: the nearest over the mean of the k nearest."""
    return d[:, 0] / d.mean(1).clamp(min=1e-12)


def copy_ratio(q: torch.Tensor, ref: torch.Tensor, device: torch.device, k: int = COPY_NEIGHBOURS,
               exclude_self: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per query: its distance to the nearest ref sprite divided by the mean distance to its k nearest
    (counting horizontal flips), and that sprite's index. A copy of one sprite scores near 0; a sprite that
    merely sits in a dense part of the set (a plain texture among textures of its colour) scores near 1.
    The relative rule of Carlini et al., "Extracting Training Data from Diffusion Models" (2023).
    `exclude_self`: q is ref, each sprite is compared with the others (leave one out)."""
    d, j = nearest(q, ref, device, k, exclude_self)
    return ratio_of(d), j[:, 0]


def half_transparent(x: torch.Tensor) -> float:
    a = (x[:, 3].clamp(-1, 1) + 1) / 2
    return float(((a > 0.1) & (a < 0.9)).float().mean())


def roughness(x: torch.Tensor) -> float:
    """Mean RGB change between 4-neighbour pixels that are both opaque (after `clean_alpha`), in the
    [-1, 1] scale. Colour speckle raises it; a real sprite's edges and shading set the baseline."""
    x = clean_alpha(x)
    rgb, a = x[:, :3], x[:, 3:4] > 0
    total, count = 0.0, 0
    for d in (2, 3):
        n = x.shape[d] - 1
        both = (a.narrow(d, 0, n) & a.narrow(d, 1, n)).float()
        diff = (rgb.narrow(d, 1, n) - rgb.narrow(d, 0, n)).abs().mean(1, keepdim=True)
        total += float((diff * both).sum())
        count += float(both.sum())
    return total / max(count, 1.0)


def parse_setting(s: str) -> Dict:
    """'ddim25', 'ddim25-g2', 'ddim25-e1' (DDIM eta 1), 'ddpm', 'ddpm-g1.5' -> dict.

    '-s0.4' makes variations (SDEdit) of the held-out real sprites of each category at strength 0.4
    instead of fresh sprites; the report then adds their mean pixel distance to the source.
    """
    parts = s.split("-")
    base, guidance, eta, strength = parts[0], 1.0, 0.0, None
    for p in parts[1:]:
        if p.startswith("g"):
            guidance = float(p[1:])
        elif p.startswith("s"):
            strength = float(p[1:])
            if not 0.0 <= strength <= 1.0:
                raise ValueError(f"setting {s!r}: strength must be within 0..1")
        elif p.startswith("e") and base.startswith("ddim"):
            eta = float(p[1:])
            if not 0.0 <= eta <= 1.0:
                raise ValueError(f"setting {s!r}: eta must be within 0..1")
        else:
            raise ValueError(f"setting {s!r}: unknown part {p!r}; use e.g. ddim25, ddim25-g2, ddim25-e1, ddpm-g1.5")
    extra = {} if strength is None else {"strength": strength}
    if base == "ddpm":
        return {"name": s, "sampler": "ddpm", "steps": 0, "guidance": guidance, **extra}
    if base.startswith("ddim") and base[4:].isdigit():
        return {"name": s, "sampler": "ddim", "steps": int(base[4:]), "guidance": guidance, "eta": eta, **extra}
    raise ValueError(f"setting {s!r}: use ddpm or ddimN, optionally -gG for guidance")


WEIGHTS = {"fp32": lambda sd: sd, "fp16": fake_quant_fp16, "int8": fake_quant_int8}


def load_for_eval(path: Path) -> Dict:
    """A model to evaluate from a run directory, a checkpoint.pt or an exported model.json."""
    if path.suffix == ".json":
        try:
            t = load_teacher(path)
        except TeacherError as e:
            raise ValueError(str(e)) from None
        sc = t.meta["schedule"]
        return {"model": t.model, "categories": t.categories, "steps": t.meta.get("training", {}).get("steps"),
                "schedule": ScheduleConfig(T=sc["T"], beta_start=sc["beta_start"], beta_end=sc["beta_end"],
                                           name=sc["name"]),
                "data": None, "name": t.name, "opaque": list(t.meta.get("opaque", []))}
    ck = load_run(path)
    return {"model": build_model(ck), "categories": list(ck["categories"]), "steps": ck["step"],
            "opaque": checkpoint_opaque(ck),
            "schedule": ScheduleConfig(**ck["config"]["schedule"]), "data": ck["config"]["data"],
            "name": path.name if path.is_dir() else path.parent.name}


def evaluate(run: Path, data: Optional[Path], out: Path, per_category: int, settings: List[str],
             device: torch.device, epochs: int, seed: int = 0, weights: Sequence[str] = ("fp32",),
             also: Sequence[Tuple[Path, List[str]]] = (), grid_scale: Optional[int] = None) -> Dict:
    main = load_for_eval(run)
    base = main["model"]
    # an --also setting may name its weights after '@' (ddim25-g3@int8); the main run uses `weights`
    also_jobs = [(p, *s.partition("@")[::2]) for p, sts in also for s in sts]
    for w in [*weights, *(w for _, _, w in also_jobs if w)]:
        if w not in WEIGHTS:
            raise ValueError(f"unknown weights '{w}': use {', '.join(WEIGHTS)}")
    data = data or (Path(main["data"]) if main["data"] else None)
    if data is None:
        from .config import TrainConfig
        data = Path(TrainConfig().data)
    d = load_dataset(Path(data))
    names: List[str] = d["categories"]
    loaded = {p: load_for_eval(p) for p, _ in also}
    extras = [(loaded[p], s, w or "fp32") for p, s, w in also_jobs]
    for m in [main, *loaded.values()]:
        if names != m["categories"]:
            raise ValueError(f"dataset categories {names} differ from {m['name']}'s {m['categories']}")
    k = len(names)
    x_all, y_all = to_float(d["images"]), torch.from_numpy(d["labels"])
    held = torch.from_numpy(d["held_out"])
    x_tr, y_tr, x_ev, y_ev = x_all[~held], y_all[~held], x_all[held], y_all[held]
    t0 = time.time()
    clf = train_classifier(x_tr, y_tr, k, device, epochs, seed)
    f_tr, _ = embed(clf, x_tr, device)
    f_ev, p_ev = embed(clf, x_ev, device)
    real_acc = float((p_ev == y_ev).float().mean())
    fd_real = frechet(f_ev, f_tr)
    fd_real_bal = frechet_balanced(f_ev, y_ev, f_tr, y_tr, k)
    # a perfect generator under this protocol: training sprites themselves, drawn per_category per category
    gd = torch.Generator().manual_seed(seed)
    pick = torch.cat([torch.nonzero(y_tr == i).flatten()[torch.randint(int((y_tr == i).sum()), (per_category,),
                                                                         generator=gd)]
                      for i in range(k) if bool((y_tr == i).any())])
    train_draw = {"per_category": per_category, "frechet_unweighted": frechet(f_tr[pick], f_tr),
                  "frechet_balanced": frechet_balanced(f_tr[pick], y_tr[pick], f_tr, y_tr, k)}
    d_real, _ = nearest(x_ev, x_tr, device, COPY_NEIGHBOURS)
    nn_real = d_real[:, 0]
    # a generated sprite is a near copy when it sits closer to the training set than 95% of held-out real ones
    near_threshold = torch.quantile(nn_real, 0.05)
    # a generated sprite is a copy when its copy ratio is below that of 95% of real sprites: the held-out ones
    # against the training split, and each training sprite against the others (enough sprites for a stable
    # 5th percentile on a small set)
    ratio_real = torch.cat([ratio_of(d_real), copy_ratio(x_tr, x_tr, device, exclude_self=True)[0]])
    copy_threshold = torch.quantile(ratio_real, 0.05)
    rough_real = roughness(x_ev)
    report: Dict = {
        "classifier": {"epochs": epochs, "heldout_accuracy": real_acc,
                       "per_category_heldout_accuracy": {n: float((p_ev[y_ev == i] == i).float().mean())
                                                         for i, n in enumerate(names)}},
        "real": {"frechet_heldout_vs_train": fd_real, "frechet_balanced": fd_real_bal,
                 "per_category_frechet": frechet_per_category(f_ev, y_ev, f_tr, y_tr, names),
                 "nn_median_heldout": float(nn_real.median()),
                 "half_transparent_share": half_transparent(x_ev), "roughness": rough_real,
                 "near_copy_threshold": float(near_threshold), "n_heldout": int(len(x_ev)),
                 "copy_ratio_threshold": float(copy_threshold), "copy_neighbours": COPY_NEIGHBOURS,
                 "train_draw": train_draw},
        "settings": [],
    }
    print(f"classifier held-out accuracy {real_acc:.3f}; FD held-out vs train {fd_real_bal:.2f} balanced, "
          f"{fd_real:.2f} unweighted; training sprites drawn {per_category} per category "
          f"{train_draw['frechet_balanced']:.2f} balanced, {train_draw['frechet_unweighted']:.2f} unweighted",
          flush=True)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(main, w, s, "") for w in weights for s in settings]
    jobs += [(m, w, s, f"{m['name']}:") for m, s, w in extras]
    for src, w, s, prefix in jobs:
        sch = DDPMSchedule(src["schedule"])
        model = copy.deepcopy(src["model"])
        model.load_state_dict(WEIGHTS[w](src["model"].state_dict()))
        model = model.to(device).eval()
        st = parse_setting(s)
        if w != "fp32":
            s = f"{s}@{w}"
            st["name"], st["weights"] = s, w
        if prefix:
            s = prefix + s
            st["name"], st["model"], st["model_steps"] = s, src["name"], src["steps"]
        ctx = torch.eye(k, device=device).repeat_interleave(per_category, dim=0)
        y_gen = torch.arange(k).repeat_interleave(per_category)
        # the runtime samples the model's opaque categories with their alpha known (see schedule.sample)
        opaque = torch.tensor([names[int(y)] in src["opaque"] for y in y_gen], device=device)
        if src["opaque"]:
            st["opaque"] = list(src["opaque"])
        gen = torch.Generator(device=device).manual_seed(seed + 1)
        init = None
        if st.get("strength") is not None:
            if model.cfg.size != x_all.shape[-1]:
                raise ValueError(f"setting {s!r}: variations need a model of the dataset's size ({x_all.shape[-1]}px)")
            # Each category's held-out real sprites, cycled, are the sources of its variations.
            init = torch.cat([x_ev[y_ev == i][torch.arange(per_category) % int((y_ev == i).sum())]
                              for i in range(k)]).to(device)
        xs = []
        ts = time.time()
        bs = 256
        bar = Progress(len(ctx), f"sample {s}", unit="img", min_interval=2)
        for i in range(0, len(ctx), bs):
            src_b = {} if init is None else {"init": init[i:i + bs], "strength": st["strength"]}
            xb = sample(model, sch, ctx[i:i + bs], model.cfg.size, model.cfg.channels, sampler=st["sampler"],
                        steps=st["steps"], guidance=st["guidance"], clip_x0=True, generator=gen,
                        eta=st.get("eta", 0.0), opaque=opaque[i:i + bs], **src_b)
            xs.append(xb.cpu())
            bar.update(len(xb))
        bar.close()
        raw = torch.cat(xs)
        secs = time.time() - ts
        if model.cfg.size != x_all.shape[-1]:
            # A model trained at the art's native size, scored against the same sprites upscaled.
            f = x_all.shape[-1] // model.cfg.size
            if f * model.cfg.size != x_all.shape[-1]:
                raise ValueError(f"{src['name']} makes {model.cfg.size}px sprites; the dataset's are "
                                 f"{x_all.shape[-1]}px, not a whole multiple")
            raw = raw.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
            st["upscaled"] = f
        x_gen = clean_alpha(raw)
        f_gen, p_gen = embed(clf, x_gen, device)
        d_gen, j_gen = nearest(x_gen, x_tr, device, COPY_NEIGHBOURS)
        nn_gen, nn_idx = d_gen[:, 0], j_gen[:, 0]
        per_cat = {n: float((p_gen[y_gen == i] == i).float().mean()) for i, n in enumerate(names)}
        near = nn_gen < near_threshold
        near_per_cat = {n: float(near[y_gen == i].float().mean()) for i, n in enumerate(names)}
        ratio_gen = ratio_of(d_gen)
        copies = ratio_gen < copy_threshold
        r = {
            **st,
            "accuracy_generated": float((p_gen == y_gen).float().mean()),
            "per_category_accuracy": per_cat,
            "frechet_generated_vs_train": frechet(f_gen, f_tr),
            # both sides one mass per category: the headline figure (the unweighted one above also measures
            # the difference between the evaluator's equal counts and the training split's category mix)
            "frechet_balanced": frechet_balanced(f_gen, y_gen, f_tr, y_tr, k),
            # each category's sprites against that category's training sprites
            "per_category_frechet": frechet_per_category(f_gen, y_gen, f_tr, y_tr, names),
            "nn_median_generated": float(nn_gen.median()),
            "nn_ratio_generated_to_heldout": float(nn_gen.median() / nn_real.median()),
            "near_copies_share": float(near.float().mean()),
            "near_copies_per_category": near_per_cat,
            "copies_share": float(copies.float().mean()),
            "copies_per_category": {n: float(copies[y_gen == i].float().mean()) for i, n in enumerate(names)},
            "half_transparent_share_raw": half_transparent(raw),
            "roughness": (rough := roughness(raw)),
            "roughness_ratio_to_heldout": rough / max(rough_real, 1e-9),
            "seconds": round(secs, 1), "n": int(len(raw)),
        }
        if init is not None:
            # mean absolute difference to the source in byte units (0..255), alpha rule applied to both
            r["pixel_distance_to_source"] = float(((x_gen - clean_alpha(init.cpu())).abs().mean() * 127.5))
        report["settings"].append(r)
        u8 = ((x_gen + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        rows = u8.reshape(k, per_category, *u8.shape[1:])[:, :8].reshape(-1, *u8.shape[1:])
        file_tag = s.replace(":", "-")
        save_grid(rows, k, out / f"samples-{file_tag}.png", labels=names, scale=grid_scale)
        # nearest-neighbour check: generated row above its nearest training sprite
        pick = torch.arange(k) * per_category
        tr_u8 = ((x_tr[nn_idx[pick]] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        save_grid(np.concatenate([u8[pick.numpy()], tr_u8]), 2, out / f"nearest-{file_tag}.png",
                  labels=["generated", "nearest real"])
        # every flagged copy (up to 24, most certain first) above the training sprite it copies
        flagged = torch.nonzero(copies).flatten()
        flagged = flagged[ratio_gen[flagged].argsort()][:24]
        if len(flagged):
            cp_u8 = ((x_tr[nn_idx[flagged]] + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            save_grid(np.concatenate([u8[flagged.numpy()], cp_u8]), 2, out / f"copies-{file_tag}.png",
                      labels=["generated", "copied"])
        print(f"{s}: acc {r['accuracy_generated']:.3f} (real {real_acc:.3f}), FD {r['frechet_balanced']:.2f} "
              f"(real {fd_real_bal:.2f}; unweighted {r['frechet_generated_vs_train']:.2f}, real {fd_real:.2f}), NN ratio {r['nn_ratio_generated_to_heldout']:.2f}, copies "
              f"{r['copies_share']:.3f} (closer in pixels than real {r['near_copies_share']:.3f}), half-transparent {r['half_transparent_share_raw']:.4f}, roughness "
              f"{r['roughness']:.3f} ({r['roughness_ratio_to_heldout']:.2f}x real)"
              + (f", pixel distance to source {r['pixel_distance_to_source']:.1f}" if init is not None else ""),
              flush=True)
    report["seconds_total"] = round(time.time() - t0, 1)
    report["device"] = str(device)
    report["model"] = main["name"]
    report["model_steps"] = main["steps"]
    report["model_size"] = base.cfg.size
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="npm run evaluate --", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run directory, checkpoint.pt, or an exported model.json")
    p.add_argument("--also", action="append", default=[], metavar="MODEL=SETTINGS",
                   help="another model (run, checkpoint or model.json) and its comma-separated settings, scored "
                        "by the same classifier, e.g. models/fast/model.json=ddim25; a setting may end in @fp16 or @int8 "
                        "to score those weights (models/model.json=ddim25-g3@int8); repeatable")
    p.add_argument("--data", help="dataset .npz (default: the run's)")
    p.add_argument("--out", default="models/eval", help="output folder for eval.json and PNGs")
    p.add_argument("--per-category", type=int, default=64)
    p.add_argument("--settings", default="ddim25", help="comma list, e.g. ddim25,ddim25-g2,ddpm")
    p.add_argument("--epochs", type=int, default=15, help="classifier epochs")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights", default="fp32", help="comma list of weight variants: fp32, fp16, int8 (as exported)")
    p.add_argument("--grid-scale", type=int, help="scale of the sample grids (default: cells of at least 64 px)")
    a = p.parse_args(argv)
    use_all_cores()
    dev = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if a.device == "auto" else a.device))
    try:
        also = []
        for item in a.also:
            path, sep, sts = item.rpartition("=")
            if not sep or not path or not sts:
                raise ValueError(f"--also {item!r}: give MODEL=SETTINGS, e.g. models/fast/model.json=ddim25")
            also.append((Path(path), sts.split(",")))
        evaluate(Path(a.run), Path(a.data) if a.data else None, Path(a.out), a.per_category,
                 a.settings.split(","), dev, a.epochs, weights=a.weights.split(","), also=also,
                 grid_scale=a.grid_scale)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
