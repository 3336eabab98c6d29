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

from dataclasses import dataclass
from typing import List, Optional

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


@torch.no_grad()
def sample(model: torch.nn.Module, schedule: DDPMSchedule, context: torch.Tensor,
           size: int, channels: int, sampler: str = "ddpm", steps: int = 0,
           guidance: float = 1.0, clip_x0: bool = True,
           generator: Optional[torch.Generator] = None, eta: float = 0.0) -> torch.Tensor:
    """Sample a batch in [-1, 1]; context [B, K] (zeros = unconditional); eta: DDIM's noise (0..1)."""
    device = context.device
    B = context.shape[0]
    x = torch.randn(B, channels, size, size, generator=generator, device=device)
    null = torch.zeros_like(context)

    def eps_at(x: torch.Tensor, tt: int) -> torch.Tensor:
        tv = torch.full((B,), float(tt), device=device)
        if guidance == 1.0:
            return model(x, tv, context)
        both = model(torch.cat([x, x]), torch.cat([tv, tv]), torch.cat([context, null]))
        return guided_eps(both[:B], both[B:], guidance)

    if sampler == "ddpm":
        for tt in range(schedule.T, 0, -1):
            eps = eps_at(x, tt)
            z = torch.randn(x.shape, generator=generator, device=device) if tt > 1 else None
            t = torch.full((B,), tt, device=device, dtype=torch.long)
            x = schedule.ddpm_step(x, t, eps, z, clip_x0=clip_x0)
    elif sampler == "ddim":
        ts = ddim_timesteps(schedule.T, steps or 25)
        for i, tt in enumerate(ts):
            prev = ts[i + 1] if i + 1 < len(ts) else 0
            eps = eps_at(x, tt)
            t = torch.full((B,), tt, device=device, dtype=torch.long)
            tp = torch.full((B,), prev, device=device, dtype=torch.long)
            z = torch.randn(x.shape, generator=generator, device=device) if eta > 0 and prev > 0 else None
            x = schedule.ddim_step(x, t, tp, eps, clip_x0=clip_x0, eta=eta if z is not None else 0.0, z=z)
    else:
        raise ValueError(f"unknown sampler '{sampler}': use 'ddpm' or 'ddim'")
    return x.clamp(-1.0, 1.0)
