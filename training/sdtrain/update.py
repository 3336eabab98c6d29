"""The weightless update graph (update.onnx): guidance + x0 clipping + one sampler step.

It keeps the runtime's denoising loop on the GPU: the denoiser's output feeds this
graph, whose output feeds the next denoiser call, with no read-back in between.
The coefficients come from the runtime's schedule (see plugin/MODEL_FORMAT.md):
coef = [sqrt(ab_t), sqrt(1 - ab_t), A, B, C, clip]; x_next = A x + B eps + C z.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn


def update_reference(x: torch.Tensor, eps_all: torch.Tensor, z: torch.Tensor, coef: torch.Tensor,
                     guidance: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    b = x.shape[0]
    n = eps_all.shape[0] // b
    eps_c = eps_all[:b]
    eps_u = eps_all[eps_all.shape[0] - b:]
    # One Split for the six coefficients and guidance as its [1] tensor: in ONNX each indexed scalar was
    # a Gather, one GPU dispatch each; broadcasting a [1] tensor gives the same values.
    e = eps_u + guidance * (eps_c - eps_u)
    s0, s1, A, B, C, clip = torch.split(coef, 1)
    x0 = ((x - s1 * e) / s0).clamp(-1.0, 1.0)
    e_clip = (x - s0 * x0) / s1
    e = clip * e_clip + (1.0 - clip) * e
    x_next = A * x + B * e + C * z
    return x_next, x_next.repeat(n, 1, 1, 1)


class UpdateGraph(nn.Module):
    def forward(self, x, eps, z, coef, guidance):  # noqa: D401 - ONNX entry point
        return update_reference(x, eps, z, coef, guidance)
