"""Write golden.json: shared test vectors that pin the DDPM math between Python and TypeScript.

    python -m sdtrain.golden [--out test/fixtures/golden.json]

Everything is computed in float64 with training's own schedule module. Beside golden.json it writes
linear/model.onnx and linear/update.onnx: the loops' fake denoiser (4x4 RGBA images, 3 context values)
and the update graph for that shape, so the loops run on the WebGPU runner too (test/browser/loops.test.ts).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from .export import export_update, _export
from .model import ModelConfig
from .schedule import DDPMSchedule, ScheduleConfig, ddim_timesteps, guided_eps, sample
from .update import update_reference


def _flat(x: torch.Tensor) -> List[float]:
    return [float(v) for v in x.double().flatten()]


def make_golden(cfg: ScheduleConfig = ScheduleConfig(), seed: int = 7) -> Dict:
    s = DDPMSchedule(cfg)
    g = torch.Generator().manual_seed(seed)
    shape = (2, 4, 4, 4)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 1.5
    eps = torch.randn(shape, generator=g, dtype=torch.float64)
    z = torch.randn(shape, generator=g, dtype=torch.float64)
    ts = [0, 1, 2, 10, 100, 250, 499, cfg.T]
    cases = []
    for t, clip in [(250, False), (250, True), (1, False), (1, True), (2, False), (cfg.T, False), (cfg.T, True), (37, True)]:
        tt = torch.full((shape[0],), t, dtype=torch.long)
        out = s.ddpm_step(x, tt, eps, z, clip_x0=clip)
        cases.append({"kind": "ddpm", "t": t, "clip_x0": clip, "out": _flat(out)})
    for t, tp, clip in [(250, 230, False), (250, 230, True), (cfg.T, 480, False), (21, 1, True), (20, 0, False), (20, 0, True)]:
        tt = torch.full((shape[0],), t, dtype=torch.long)
        tpp = torch.full((shape[0],), tp, dtype=torch.long)
        out = s.ddim_step(x, tt, tpp, eps, clip_x0=clip)
        cases.append({"kind": "ddim", "t": t, "t_prev": tp, "clip_x0": clip, "out": _flat(out)})
    for t, tp, clip, eta in [(250, 230, False, 1.0), (250, 230, True, 0.5), (cfg.T, 480, True, 1.0), (21, 1, False, 1.0),
                             (20, 0, True, 1.0)]:
        tt = torch.full((shape[0],), t, dtype=torch.long)
        tpp = torch.full((shape[0],), tp, dtype=torch.long)
        out = s.ddim_step(x, tt, tpp, eps, clip_x0=clip, eta=eta, z=z)
        cases.append({"kind": "ddim", "t": t, "t_prev": tp, "clip_x0": clip, "eta": eta, "out": _flat(out)})
    eps_u = torch.randn(shape, generator=g, dtype=torch.float64)
    updates = []
    for kind, t, tp, clip, gscale, rows, eta in [("ddpm", 250, 249, True, 2.0, 2, 0.0), ("ddpm", 3, 2, False, 1.0, 1, 0.0),
                                                ("ddim", 250, 230, True, 3.0, 2, 0.0), ("ddim", 20, 0, False, 1.0, 1, 0.0),
                                                ("ddim", 250, 230, True, 3.0, 2, 1.0), ("ddim", 41, 21, False, 1.0, 1, 0.5)]:
        coef = s_coef(s, kind, t, tp, clip, eta)
        eps_all = torch.cat([eps, eps_u]) if rows == 2 else eps
        zz = z if (kind == "ddpm" and t > 1) or (eta > 0 and tp > 0) else torch.zeros_like(z)
        out = update_reference(x, eps_all, zz, torch.tensor(coef, dtype=torch.float64),
                               torch.tensor([gscale], dtype=torch.float64))[0]
        updates.append({"kind": kind, "t": t, "t_prev": tp, "clip_x0": clip, "eta": eta, "coef": coef, "guidance": gscale,
                        "eps_rows": rows, "x": _flat(x), "eps": _flat(eps_all), "z": _flat(zz), "out": _flat(out)})
    return {
        "generated_by": "training/sdtrain/golden.py (float64)",
        "schedule": {"T": cfg.T, "beta_start": cfg.beta_start, "beta_end": cfg.beta_end},
        "schedule_values": [{"t": t, "beta": float(s.betas[t]), "alpha": float(s.alphas[t]),
                             "alpha_bar": float(s.alpha_bar[t])} for t in ts],
        "ddim_timesteps": {str(n): ddim_timesteps(cfg.T, n) for n in (1, 2, 10, 25, 50, 100)},
        "shape": list(shape),
        "x": _flat(x), "eps": _flat(eps), "z": _flat(z),
        "cases": cases,
        "guidance": {"scale": 3.0, "eps_cond": _flat(eps), "eps_uncond": _flat(eps_u),
                     "out": _flat(guided_eps(eps, eps_u, 3.0))},
        "update": updates,
        "loops": make_loops(cfg, seed),
    }


class LinearDenoiser(torch.nn.Module):
    """The loops' fake network: eps = a x + b t + c sum(context) (per row), easy to write in any language."""

    a, b, c = 0.5, 0.002, 0.1

    def forward(self, x: torch.Tensor, t: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return self.a * x + self.b * t.view(-1, 1, 1, 1) + self.c * ctx.sum(dim=1).view(-1, 1, 1, 1)


def export_linear(out_dir: Path) -> None:
    """The loops' LinearDenoiser and its update graph as ONNX (float32; inputs as a model's)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = (torch.zeros(2, 4, 4, 4), torch.ones(2), torch.zeros(2, 3))
    _export(LinearDenoiser(), args, out_dir / "model.onnx", ["image", "timestep", "context"], ["noise"],
            {"image": {0: "batch"}, "timestep": {0: "batch"}, "context": {0: "batch"}, "noise": {0: "batch"}})
    export_update(ModelConfig(size=4, channels=4, n_context=3), out_dir / "update.onnx")


def make_loops(cfg: ScheduleConfig, seed: int) -> List[Dict]:
    """Whole sampling loops (the plugin's one loop must reproduce them) with pre-drawn noise."""
    g = torch.Generator().manual_seed(seed + 1)
    shape = (2, 4, 4, 4)
    ctx = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], dtype=torch.float64)
    init = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    mask = torch.zeros(shape[0], 1, shape[2], shape[3], dtype=torch.float64)
    mask[:, :, :, 2:] = 1.0  # regenerate the right half
    model = LinearDenoiser()
    loops = []
    for name, T, sampler, steps, guidance, eta, clip, art in [
            ("ddim10-eta1-g3", cfg.T, "ddim", 10, 3.0, 1.0, True, {}),
            ("ddpm-T20-g2", 20, "ddpm", 0, 2.0, 0.0, True, {}),
            ("ddim10-sdedit-0.4", cfg.T, "ddim", 10, 3.0, 0.0, True, {"init": init, "strength": 0.4}),
            ("ddim10-inpaint", cfg.T, "ddim", 10, 1.0, 1.0, False, {"init": init, "mask": mask}),
            ("ddim10-opaque-g3", cfg.T, "ddim", 10, 3.0, 1.0, True, {"opaque": torch.tensor([True, False])}),
            ("ddim10-inpaint-opaque", cfg.T, "ddim", 10, 1.0, 1.0, True,
             {"init": init, "mask": mask, "opaque": torch.tensor([False, True])})]:
        sched = DDPMSchedule(ScheduleConfig(T=T, beta_start=cfg.beta_start, beta_end=cfg.beta_end))
        draws: List[torch.Tensor] = []

        def draw() -> torch.Tensor:
            z = torch.randn(shape, generator=g, dtype=torch.float64)
            draws.append(z)
            return z

        out = sample(model, sched, ctx, shape[2], shape[1], sampler=sampler, steps=steps, guidance=guidance,
                     clip_x0=clip, eta=eta, draw=draw, **art)
        case = {"name": name, "schedule": {"T": T, "beta_start": cfg.beta_start, "beta_end": cfg.beta_end},
                "sampler": sampler, "steps": steps, "guidance": guidance, "eta": eta, "clip_x0": clip,
                "denoiser": {"a": model.a, "b": model.b, "c": model.c}, "contexts": ctx.tolist(),
                "draws": [_flat(z) for z in draws], "out": _flat(out)}
        if "init" in art:
            case["init"] = _flat(art["init"])
        if "strength" in art:
            case["strength"] = art["strength"]
        if "mask" in art:
            case["mask"] = _flat(art["mask"])
        if "opaque" in art:
            case["opaque"] = [bool(o) for o in art["opaque"]]
        loops.append(case)
    return loops


def s_coef(s: DDPMSchedule, kind: str, t: int, tp: int, clip: bool, eta: float = 0.0) -> List[float]:
    """The update graph's coef vector [sqrt_ab, sqrt_1m_ab, A, B, C, clip] (float64)."""
    ab, a, b = float(s.alpha_bar[t]), float(s.alphas[t]), float(s.betas[t])
    if kind == "ddpm":
        A = 1 / a ** 0.5
        B = -(1 - a) / ((1 - ab) ** 0.5 * a ** 0.5)
        C = b ** 0.5 if t > 1 else 0.0
    else:
        abp = float(s.alpha_bar[tp])
        sigma = eta * max(0.0, (1 - abp) / (1 - ab) * (1 - ab / abp)) ** 0.5
        A = abp ** 0.5 / ab ** 0.5
        B = max(0.0, 1 - abp - sigma ** 2) ** 0.5 - abp ** 0.5 * (1 - ab) ** 0.5 / ab ** 0.5
        C = sigma
    return [ab ** 0.5, (1 - ab) ** 0.5, A, B, C, 1.0 if clip else 0.0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="test/fixtures/golden.json")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(make_golden(), indent=1) + "\n")
    export_linear(out.parent / "linear")
    print(f"golden vectors -> {out}; the loops' linear denoiser -> {out.parent / 'linear'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
