"""DDPM noise schedule and samplers, kept apart from the network.

The schedule follows the "How Diffusion Models Work" course exactly:

    betas[t]     = beta_start + (beta_end - beta_start) * t / T      for t = 0..T
    alphas[t]    = 1 - betas[t]
    alpha_bar[t] = prod_{s=0..t} alphas[s],  then alpha_bar[0] := 1

(so alpha_bar[1] includes alphas[0]; this quirk is kept on purpose, the runtime
reproduces it). Training draws t uniformly from 1..T.

One DDPM step (the course's update), t >= 1:

    x_{t-1} = (x_t - eps * (1 - alphas[t]) / sqrt(1 - alpha_bar[t])) / sqrt(alphas[t])
              + sqrt(betas[t]) * z                                  (z = 0 when t == 1)

One DDIM step (eta = 0) from t to t_prev < t:

    x0      = (x_t - sqrt(1 - alpha_bar[t]) * eps) / sqrt(alpha_bar[t])
    x_prev  = sqrt(alpha_bar[t_prev]) * x0 + sqrt(1 - alpha_bar[t_prev]) * eps

With ``clip_x0`` the predicted x0 is clipped to [-1, 1] and eps is recomputed
from it, eps' = (x_t - sqrt(alpha_bar[t]) * x0) / sqrt(1 - alpha_bar[t]), before
either update. Without clipping both updates are exactly the course's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch


@dataclass(frozen=True)
class ScheduleConfig:
    """Everything a runtime needs to rebuild the schedule."""

    T: int = 500
    beta_start: float = 1e-4
    beta_end: float = 0.02
    name: str = "linear"


class DDPMSchedule:
    """Precomputed schedule tensors (float64 for accuracy, cast on use)."""

    def __init__(self, cfg: ScheduleConfig = ScheduleConfig()):
        if cfg.name != "linear":
            raise ValueError(f"unknown schedule '{cfg.name}': only 'linear' is supported")
        if cfg.T < 2:
            raise ValueError(f"T must be at least 2, got {cfg.T}")
        self.cfg = cfg
        T = cfg.T
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        self.betas = cfg.beta_start + (cfg.beta_end - cfg.beta_start) * steps
        self.alphas = 1.0 - self.betas
        self.alpha_bar = torch.cumsum(torch.log(self.alphas), dim=0).exp()
        self.alpha_bar[0] = 1.0

    @property
    def T(self) -> int:
        return self.cfg.T

    def _gather(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        vals = table.to(like.device)[t.long()].to(like.dtype)
        return vals.view(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0): sqrt(ab) x0 + sqrt(1 - ab) noise."""
        ab = self._gather(self.alpha_bar, t, x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar.to(t.device)[t.long()]
        return ab / (1.0 - ab)

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        ab = self._gather(self.alpha_bar, t, x)
        return (x - (1.0 - ab).sqrt() * eps) / ab.sqrt()

    def _clip_eps(self, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        ab = self._gather(self.alpha_bar, t, x)
        x0 = ((x - (1.0 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1.0, 1.0)
        return (x - ab.sqrt() * x0) / (1.0 - ab).sqrt()

    def ddpm_step(self, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                  z: Optional[torch.Tensor], clip_x0: bool = False) -> torch.Tensor:
        """The course's ancestral update from t to t-1 (t >= 1, per batch item)."""
        if clip_x0:
            eps = self._clip_eps(x, t, eps)
        a = self._gather(self.alphas, t, x)
        ab = self._gather(self.alpha_bar, t, x)
        b = self._gather(self.betas, t, x)
        mean = (x - eps * (1.0 - a) / (1.0 - ab).sqrt()) / a.sqrt()
        if z is None:
            return mean
        last = (t <= 1).view(-1, *([1] * (x.dim() - 1)))
        return torch.where(last, mean, mean + b.sqrt() * z)

    def ddim_sigma(self, t: torch.Tensor, t_prev: torch.Tensor, eta: float, like: torch.Tensor) -> torch.Tensor:
        """DDIM's noise scale: eta * sqrt((1 - ab_prev) / (1 - ab)) * sqrt(1 - ab / ab_prev); 0 when t_prev = 0."""
        ab = self._gather(self.alpha_bar, t, like)
        ab_prev = self._gather(self.alpha_bar, t_prev, like)
        return eta * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)).clamp_min(0.0).sqrt()

    def ddim_step(self, x: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor,
                  eps: torch.Tensor, clip_x0: bool = False, eta: float = 0.0,
                  z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """DDIM update from t to t_prev. eta = 0 is deterministic; eta > 0 adds sigma * z (eta = 1: the
        DDPM posterior's variance over the stride), with sigma from `ddim_sigma`; z is needed then."""
        if clip_x0:
            eps = self._clip_eps(x, t, eps)
        ab = self._gather(self.alpha_bar, t, x)
        ab_prev = self._gather(self.alpha_bar, t_prev, x)
        x0 = (x - (1.0 - ab).sqrt() * eps) / ab.sqrt()
        if eta == 0.0:
            return ab_prev.sqrt() * x0 + (1.0 - ab_prev).sqrt() * eps
        if z is None:
            raise ValueError("a DDIM step with eta > 0 needs noise z")
        sigma = self.ddim_sigma(t, t_prev, eta, x)
        return ab_prev.sqrt() * x0 + (1.0 - ab_prev - sigma ** 2).clamp_min(0.0).sqrt() * eps + sigma * z


def ddim_timesteps(T: int, n: int) -> List[int]:
    """The N timesteps visited by DDIM, descending, ending at 1; next is 0.

    t_i = round(1 + (T - 1) * (n - 1 - i) / (n - 1)) for i = 0..n-1 (t_0 = T, t_{n-1} = 1),
    de-duplicated. The step after the last goes to t_prev = 0 (alpha_bar = 1).
    """
    if n < 1 or n > T:
        raise ValueError(f"DDIM steps must be in 1..{T}, got {n}")
    if n == 1:
        return [T]
    out: List[int] = []
    for i in range(n):
        v = int(round(1 + (T - 1) * (n - 1 - i) / (n - 1)))
        if not out or out[-1] != v:
            out.append(v)
    return out


def guided_eps(eps_cond: torch.Tensor, eps_uncond: Optional[torch.Tensor], scale: float) -> torch.Tensor:
    """Classifier-free guidance: eps_u + s (eps_c - eps_u); s = 1 is plain conditional."""
    if eps_uncond is None or scale == 1.0:
        return eps_cond
    return eps_uncond + scale * (eps_cond - eps_uncond)


def plan_steps(T: int, sampler: str, steps: int = 0) -> List[Tuple[int, int]]:
    """The (t, t_prev) pairs a sampler visits: DDPM T..1; DDIM ddim_timesteps(T, steps or 25) ending at 0."""
    if sampler == "ddpm":
        return [(tt, tt - 1) for tt in range(T, 0, -1)]
    if sampler == "ddim":
        ts = ddim_timesteps(T, steps or 25)
        return [(tt, ts[i + 1] if i + 1 < len(ts) else 0) for i, tt in enumerate(ts)]
    raise ValueError(f"unknown sampler '{sampler}': use 'ddpm' or 'ddim'")


@torch.no_grad()
def sample(model: torch.nn.Module, schedule: DDPMSchedule, context: torch.Tensor,
           size: int, channels: int, sampler: str = "ddpm", steps: int = 0,
           guidance: float = 1.0, clip_x0: bool = True,
           generator: Optional[torch.Generator] = None, eta: float = 0.0,
           init: Optional[torch.Tensor] = None, strength: float = 1.0, mask: Optional[torch.Tensor] = None,
           draw: Optional[Callable[[], torch.Tensor]] = None,
           context_at: Optional[Callable[[int], torch.Tensor]] = None,
           opaque: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Sample a batch in [-1, 1]; context [B, K] (zeros = unconditional); eta: DDIM's noise (0..1).

    The plugin's loop (plugin/src/sampler/sampler.ts), step for step:
    - init [B, C, H, W] with strength in 0..1 (SDEdit): the last round(strength * steps) steps run,
      from init noised to the first of them; strength 0 returns init.
    - mask [B, 1, H, W] (1 = regenerate) with init (inpainting): after every step with t_prev > 0 the
      kept pixels become init noised to t_prev, at the end init itself.
    - draw: the source of N(0, 1) batches (default torch.randn with generator), called in the loop's
      order: x_T, then per step the update's z when the step is noisy, then the known-region noise.
    - context_at: the context of step i of the plan (default `context` at every step).
    - opaque [B] bool (RGBA): those sprites' alpha is known to be 1, so after every step with t_prev > 0
      it becomes 1 noised to t_prev (the same draw as inpainting's known region) and at the end 1; with a
      mask the kept pixels still come from init.
    """
    device = context.device
    B = context.shape[0]
    shape = (B, channels, size, size)
    if draw is None:
        def draw() -> torch.Tensor:
            return torch.randn(shape, generator=generator, device=device)
    if mask is not None and init is None:
        raise ValueError("mask needs init: the image whose unmasked pixels are kept")
    null = torch.zeros_like(context)
    if opaque is not None and (channels != 4 or not bool(opaque.any())):
        opaque = None

    def keep_opaque(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[opaque, 3] = value[opaque, 3]
        return x

    def eps_at(x: torch.Tensor, tt: int, i: int = 0) -> torch.Tensor:
        tv = torch.full((B,), float(tt), device=device)
        c = context if context_at is None else context_at(i)
        if guidance == 1.0:
            return model(x, tv, c)
        both = model(torch.cat([x, x]), torch.cat([tv, tv]), torch.cat([c, null]))
        return guided_eps(both[:B], both[B:], guidance)

    def noised(x0: torch.Tensor, tt: int, noise: torch.Tensor) -> torch.Tensor:
        return schedule.add_noise(x0, torch.full((B,), tt, device=device, dtype=torch.long), noise)

    full = plan_steps(schedule.T, sampler, steps)
    plan = full[len(full) - int(math.floor(strength * len(full) + 0.5)):] if init is not None else full
    x = draw()
    if init is not None and not plan:
        return init.clamp(-1.0, 1.0)
    if init is not None and len(plan) < len(full):
        x = noised(init, plan[0][0], x)
    for i, (tt, prev) in enumerate(plan):
        eps = eps_at(x, tt, i)
        t = torch.full((B,), tt, device=device, dtype=torch.long)
        if sampler == "ddpm":
            z = draw() if tt > 1 else None
            x = schedule.ddpm_step(x, t, eps, z, clip_x0=clip_x0)
        else:
            tp = torch.full((B,), prev, device=device, dtype=torch.long)
            z = draw() if eta > 0 and prev > 0 else None
            x = schedule.ddim_step(x, t, tp, eps, clip_x0=clip_x0, eta=eta if z is not None else 0.0, z=z)
        if (mask is not None or opaque is not None) and prev > 0:
            n = draw()
            if opaque is not None:
                x = keep_opaque(x, noised(torch.ones_like(x), prev, n))
            if mask is not None:
                x = mask * x + (1 - mask) * noised(init, prev, n)
    if opaque is not None:
        x = keep_opaque(x, torch.ones_like(x))
    if mask is not None:
        x = mask * x + (1 - mask) * init
    return x.clamp(-1.0, 1.0)
