"""Two sprites put together, for training category mixes (`--mix-prob`, `--mix-style`) and for judging them
(training/scripts/mix-blend.py). Each style takes the partner sprites (B, C, H, W in -1..1) and a random
generator and returns the layer to put over the rows and the boolean box (B, H, W) it covers; the caller
keeps only the layer's opaque pixels inside the box."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def cutmix_layer(partner: torch.Tensor, g: torch.Generator):
    """CutMix: the partner where it is, inside a random box of 25-75% of the canvas (aspect 1/2..2)."""
    dev = partner.device
    b, _, h, w = partner.shape
    area = 0.25 + 0.5 * torch.rand(b, generator=g, device=dev)  # the partner's share of the canvas
    aspect = torch.exp((torch.rand(b, generator=g, device=dev) - 0.5) * math.log(4))  # 1/2 .. 2
    bh = (torch.sqrt(area * aspect) * h).round().clamp(2, h).long()
    bw = (torch.sqrt(area / aspect) * w).round().clamp(2, w).long()
    top = (torch.rand(b, generator=g, device=dev) * (h - bh + 1)).floor().long()
    left = (torch.rand(b, generator=g, device=dev) * (w - bw + 1)).floor().long()
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    box = ((rows >= top.view(-1, 1, 1)) & (rows < (top + bh).view(-1, 1, 1))
           & (cols >= left.view(-1, 1, 1)) & (cols < (left + bw).view(-1, 1, 1)))
    return partner, box


def paste_layer(partner: torch.Tensor, g: torch.Generator, smallest: float = 0.4, largest: float = 0.75):
    """The whole partner sprite (its opaque bounding box), scaled (nearest) so its longer side is
    `smallest`..`largest` of the canvas, at a random place: the composite shows two whole things."""
    dev = partner.device
    b, c, h, w = partner.shape
    size = smallest + (largest - smallest) * torch.rand(b, generator=g, device=dev)
    where = torch.rand(b, 2, generator=g, device=dev)
    layer = torch.full_like(partner, -1.0)
    box = torch.zeros(b, h, w, dtype=torch.bool, device=dev)
    for i in range(b):
        p = partner[i]
        solid = p[3] > 0 if c == 4 else torch.ones(h, w, dtype=torch.bool, device=dev)
        ys, xs = torch.nonzero(solid, as_tuple=True)
        if len(ys) == 0:
            continue
        p = p[:, int(ys.min()):int(ys.max()) + 1, int(xs.min()):int(xs.max()) + 1]
        f = float(size[i]) * min(h, w) / max(p.shape[1], p.shape[2])
        nh = max(1, min(h, round(p.shape[1] * f)))
        nw = max(1, min(w, round(p.shape[2] * f)))
        p = F.interpolate(p[None], size=(nh, nw), mode="nearest")[0]
        top = int(where[i, 0] * (h - nh + 1))
        left = int(where[i, 1] * (w - nw + 1))
        layer[i, :, top:top + nh, left:left + nw] = p
        box[i, top:top + nh, left:left + nw] = True
    return layer, box


MIX_STYLES = {"cutmix": cutmix_layer, "paste": paste_layer}


def put_over(x0: torch.Tensor, layer: torch.Tensor, box: torch.Tensor):
    """The layer's opaque pixels inside the box over x0 (every pixel of the box for RGB); returns the
    composite and the layer's share of its opaque pixels per row."""
    if layer.shape[1] == 4:  # RGBA: only the partner's opaque pixels are pasted, so no holes are cut
        box = box & (layer[:, 3] > 0)
        opaque = (x0[:, 3] > 0) | box
    else:
        opaque = torch.ones_like(box)
    out = torch.where(box[:, None], layer, x0)
    return out, box.float().sum(dim=(1, 2)) / opaque.float().sum(dim=(1, 2)).clamp(min=1)
