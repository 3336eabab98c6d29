"""A compact context-conditioned U-Net that predicts noise from (x_t, t, context).

In the spirit of the course's ContextUnet: a down path and an up path joined by
skip connections; the timestep and the context vector each go through a small
MLP, and every residual block is modulated course-style, h * cemb + temb (with
cemb = 1 + MLP(context), so an all-zero "null" context starts near identity).
GroupNorm instead of BatchNorm, so batch statistics never leak between samples
at inference.

The timestep input is the integer t (1..T) as float32; the network encodes it
sinusoidally itself, so the runtime only passes t.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    size: int = 32
    channels: int = 4
    n_context: int = 11
    widths: Tuple[int, ...] = (32, 64, 128)
    emb_dim: int = 128
    groups: int = 8
    # Pixel-unshuffle stem: the U-Net runs on (size/patch)^2 positions with channels*patch^2
    # inputs, and pixel-shuffles its output back. patch=2 cuts FLOPs about 4x at equal widths.
    patch: int = 1
    # A linear path from the (unshuffled) input straight to the output, scaled per channel by the
    # timestep: out += (1 + a(t)) * conv3x3(x). Zero-initialised, so adding it to a trained network
    # changes nothing until it learns. With a patch stem, the U-Net's first level must carry
    # channels*patch^2 values per position; at small t the target noise is almost a copy of the
    # input's per-pixel noise, which this path can pass on directly.
    input_skip: bool = False
    # Width of a full-resolution refinement head (0: none). With a patch stem every output pixel
    # comes from a 16x16 position shared by a patch x patch block, and the only per-pixel path is
    # the linear input skip; the head adds two 3x3 convolutions at full resolution on the shuffled
    # output, the input and the shuffled last features, plus a timestep bias:
    # out += conv(silu(conv([out, x, features]) + b(t))). Its last conv starts at zero.
    refine: int = 0
    # Where the up path's resampling convolutions run: False upsamples (nearest) and then
    # convolves, as the course does; True convolves at the lower resolution and then upsamples,
    # 4x fewer FLOPs for those convolutions (about 12% of the fast network's), same parameters,
    # so a trained network can be fine-tuned into this order with --init-from.
    up_conv_first: bool = False
    # Self-attention heads at the lowest resolution (0: none; 8x8 positions for 32px sprites with three
    # levels): one attention block after the deepest down block, one after the middle block and one after
    # the first up block, so every position sees the whole sprite (a creature's head and legs) in one layer
    # instead of through stacked 3x3 convolutions. Each block's output projection starts at zero, so adding
    # attention to a trained network changes nothing until it learns (--init-from).
    attention: int = 0

    def to_dict(self) -> Dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @staticmethod
    def from_dict(d: Dict) -> "ModelConfig":
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        return ModelConfig(**d)

    def validate(self) -> None:
        if self.patch < 1 or self.size % self.patch:
            raise ValueError(f"patch {self.patch} must be a positive divisor of size {self.size}")
        down = self.patch * 2 ** (len(self.widths) - 1)
        if self.size % down:
            raise ValueError(f"size {self.size} must be divisible by {down} "
                             f"(patch {self.patch}, {len(self.widths)} levels)")
        if self.refine < 0:
            raise ValueError(f"refine must be 0 (none) or a width, got {self.refine}")
        if self.refine and self.widths[0] % (self.patch * self.patch):
            raise ValueError(f"refine needs widths[0] ({self.widths[0]}) divisible by patch^2 ({self.patch ** 2})")
        if self.attention < 0 or (self.attention and self.widths[-1] % self.attention):
            raise ValueError(f"attention {self.attention}: give 0 (none) or a head count that divides the last "
                             f"width ({self.widths[-1]})")
        for w in self.widths:
            if w % self.groups:
                raise ValueError(f"width {w} is not divisible by groups={self.groups}")


def timestep_encoding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal encoding of float timesteps [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class EmbedFC(nn.Module):
    def __init__(self, din: int, dout: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(din, dout), nn.SiLU(), nn.Linear(dout, dout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t_proj = nn.Linear(emb, cout)
        self.c_proj = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, cemb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale = 1.0 + self.c_proj(cemb)[:, :, None, None]
        shift = self.t_proj(temb)[:, :, None, None]
        h = h * scale + shift
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over every position of a feature map: pre-norm, residual, 1x1 projections.

    Written with Reshape/MatMul/Softmax only (no fused attention op), so it exports to plain ONNX that every
    onnxruntime-web backend runs; the batch is the only dynamic dimension.
    """

    def __init__(self, ch: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, c, hgt, wid = x.shape
        n, d = hgt * wid, c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(-1, 3 * self.heads, d, n)
        q, k, v = qkv[:, :self.heads], qkv[:, self.heads:2 * self.heads], qkv[:, 2 * self.heads:]
        weights = torch.softmax(torch.matmul(q.transpose(2, 3), k) * (d ** -0.5), dim=-1)  # [B, heads, query, key]
        out = torch.matmul(v, weights.transpose(2, 3)).reshape(-1, c, hgt, wid)
        return x + self.proj(out)

    def matmul_flops(self, x: torch.Tensor) -> int:
        """FLOPs of the two attention products for one sample (the projections are convolutions)."""
        n = x.shape[2] * x.shape[3]
        return 2 * 2 * n * n * x.shape[1]


class ContextUnet(nn.Module):
    """(x [B,C,H,W], t [B] float, context [B,K]) -> predicted noise [B,C,H,W]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        w, e, g = cfg.widths, cfg.emb_dim, cfg.groups
        self.time_mlp = EmbedFC(e, e)
        self.ctx_mlp = EmbedFC(cfg.n_context, e)
        pix = cfg.channels * cfg.patch * cfg.patch
        self.conv_in = nn.Conv2d(pix, w[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        prev = w[0]
        for i, ch in enumerate(w):
            self.down_blocks.append(ResBlock(prev, ch, e, g))
            prev = ch
            if i < len(w) - 1:
                self.downsamples.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = ResBlock(prev, prev, e, g)
        if cfg.attention:
            self.attn_down = SelfAttention(prev, cfg.attention, g)
            self.attn_mid = SelfAttention(prev, cfg.attention, g)
            self.attn_up = SelfAttention(prev, cfg.attention, g)
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for i in reversed(range(len(w))):
            ch = w[i]
            self.up_blocks.append(ResBlock(prev + ch, ch, e, g))
            prev = ch
            if i > 0:
                self.upsamples.append(nn.Conv2d(ch, w[i - 1], 3, padding=1))
                prev = w[i - 1]
        self.norm_out = nn.GroupNorm(g, w[0])
        self.conv_out = nn.Conv2d(w[0], pix, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        if cfg.input_skip:
            self.skip_in = nn.Conv2d(pix, pix, 3, padding=1)
            self.skip_t = nn.Linear(e, pix)
            nn.init.zeros_(self.skip_in.weight)
            nn.init.zeros_(self.skip_in.bias)
        if cfg.refine:
            r_in = 2 * cfg.channels + w[0] // (cfg.patch * cfg.patch)
            self.refine_in = nn.Conv2d(r_in, cfg.refine, 3, padding=1)
            self.refine_t = nn.Linear(e, cfg.refine)
            self.refine_out = nn.Conv2d(cfg.refine, cfg.channels, 3, padding=1)
            nn.init.zeros_(self.refine_out.weight)
            nn.init.zeros_(self.refine_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_encoding(t, self.cfg.emb_dim))
        cemb = self.ctx_mlp(context)
        p = self.cfg.patch
        xp = F.pixel_unshuffle(x, p) if p > 1 else x
        h = self.conv_in(xp)
        skips: List[torch.Tensor] = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, temb, cemb)
            if self.cfg.attention and i == len(self.down_blocks) - 1:
                h = self.attn_down(h)
            skips.append(h)
            if i < len(self.downsamples):
                h = self.downsamples[i](h)
        h = self.mid(h, temb, cemb)
        if self.cfg.attention:
            h = self.attn_mid(h)
        for i, block in enumerate(self.up_blocks):
            h = block(torch.cat([h, skips.pop()], dim=1), temb, cemb)
            if self.cfg.attention and i == 0:
                h = self.attn_up(h)
            if i < len(self.upsamples):
                if self.cfg.up_conv_first:
                    h = F.interpolate(self.upsamples[i](h), scale_factor=2.0, mode="nearest")
                else:
                    h = self.upsamples[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        feat = F.silu(self.norm_out(h))
        out = self.conv_out(feat)
        if self.cfg.input_skip:
            out = out + self.skip_in(xp) * (1.0 + self.skip_t(temb))[:, :, None, None]
        if p > 1:
            out = F.pixel_shuffle(out, p)
        if self.cfg.refine:
            f = F.pixel_shuffle(feat, p) if p > 1 else feat
            r = self.refine_in(torch.cat([out, x, f], dim=1)) + self.refine_t(temb)[:, :, None, None]
            out = out + self.refine_out(F.silu(r))
        return out


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: ContextUnet, batch: int = 1) -> int:
    """Multiply-adds x2 of convolutions, linear layers and attention products for one forward pass."""
    total = [0]

    def conv_hook(m: nn.Conv2d, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += 2 * k * out.numel()

    def lin_hook(m: nn.Linear, inp, out):
        total[0] += 2 * m.in_features * out.numel()

    def attn_hook(m: SelfAttention, inp, out):
        total[0] += m.matmul_flops(inp[0]) * inp[0].shape[0]

    hooks = []
    for m in model.modules():
        if isinstance(m, SelfAttention):
            hooks.append(m.register_forward_hook(attn_hook))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    cfg = model.cfg
    dev = next(model.parameters()).device
    with torch.no_grad():
        model(torch.zeros(batch, cfg.channels, cfg.size, cfg.size, device=dev), torch.ones(batch, device=dev),
              torch.zeros(batch, cfg.n_context, device=dev))
    for h in hooks:
        h.remove()
    return total[0] // batch
