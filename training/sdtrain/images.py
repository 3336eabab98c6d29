"""Loading sprites and fitting them to the model size.

The fitting rule (documented in training/README.md):
  * every image is converted to RGBA; palette PNGs keep their transparency;
  * a sprite no larger than the model size is centred on a transparent canvas
    (offset floor((size - w) / 2), floor((size - h) / 2)), pixels untouched;
  * a larger sprite is scaled down with nearest-neighbour, keeping its aspect
    ratio (longer side = size), then centred the same way: pixel art stays
    crisp and nothing is stretched;
  * fully transparent pixels get RGB = 0, so invisible colour never becomes data.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image


class ImageError(Exception):
    """A file that is not a readable image."""


def load_rgba(path: Path) -> np.ndarray:
    """Read a PNG as RGBA uint8 [H, W, 4]; raise ImageError if unreadable."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I", "I;16", "I;16B", "I;16L"):
                # 16-bit grey: PIL's convert clips the 0..65535 range at 255 (a white image); scale it.
                im = Image.fromarray((np.asarray(im, dtype=np.uint32) >> 8).astype(np.uint8), mode="L")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # palette-with-transparency notice
                rgba = im.convert("RGBA")
        return np.asarray(rgba, dtype=np.uint8).copy()
    except Exception as e:  # PIL raises many types for broken files
        raise ImageError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e


def clean_transparent(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    out[out[..., 3] == 0, :3] = 0
    return out


def fit_to_size(img: np.ndarray, size: int) -> np.ndarray:
    """Apply the fitting rule above; returns RGBA uint8 [size, size, 4]."""
    h, w = img.shape[:2]
    if h > size or w > size:
        scale = size / max(h, w)
        nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        img = np.asarray(Image.fromarray(img, "RGBA").resize((nw, nh), Image.NEAREST))
        h, w = nh, nw
    canvas = np.zeros((size, size, 4), dtype=np.uint8)
    y0, x0 = (size - h) // 2, (size - w) // 2
    canvas[y0:y0 + h, x0:x0 + w] = img
    return clean_transparent(canvas)


def slice_sheet(img: np.ndarray, cell: Tuple[int, int], margin: int, spacing: int, name: str) -> list:
    """Cut a sprite sheet into cells; raise ValueError if the grid does not fit."""
    cw, ch = cell
    h, w = img.shape[:2]
    if cw <= 0 or ch <= 0:
        raise ValueError(f"{name}: cell size must be positive, got {cw}x{ch}")
    cols_f = (w - 2 * margin + spacing) / (cw + spacing)
    rows_f = (h - 2 * margin + spacing) / (ch + spacing)
    if cols_f < 1 or rows_f < 1 or cols_f != int(cols_f) or rows_f != int(rows_f):
        raise ValueError(
            f"{name}: a {cw}x{ch} grid with margin {margin} and spacing {spacing} does not divide the "
            f"{w}x{h} sheet; fix cell/margin/spacing so that width = 2*margin + cols*cell + (cols-1)*spacing")
    cells = []
    for r in range(int(rows_f)):
        for c in range(int(cols_f)):
            y = margin + r * (ch + spacing)
            x = margin + c * (cw + spacing)
            cell_img = img[y:y + ch, x:x + cw]
            if (cell_img[..., 3] > 0).any():  # empty cells are dropped
                cells.append(((r, c), cell_img))
    return cells


def grid_scale(size: int) -> int:
    """How much a grid of `size`px sprites is scaled up: cells of at least 64 px, at least 2x."""
    return max(2, -(-64 // max(1, size)))


def save_grid(images: np.ndarray, rows: int, path: Path, scale: Optional[int] = None, bg=(48, 48, 56),
              labels: Optional[Sequence[str]] = None) -> None:
    """Save RGBA uint8 [N, H, W, 4] as a grid PNG on a dark background, scaled up (nearest neighbour;
    by default to cells of at least 64 px, see grid_scale) and, with `labels`, one label per row."""
    n, h, w = images.shape[:3]
    cols = (n + rows - 1) // rows
    pad = 2
    canvas = Image.new("RGBA", (cols * (w + pad) + pad, rows * (h + pad) + pad), bg + (255,))
    for i in range(n):
        r, c = divmod(i, cols)
        tile = Image.fromarray(images[i], "RGBA")
        canvas.alpha_composite(tile, (pad + c * (w + pad), pad + r * (h + pad)))
    scale = grid_scale(max(h, w)) if scale is None else scale
    if scale != 1:
        canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.NEAREST)
    if labels:
        from PIL import ImageDraw, ImageFont
        font = ImageFont.load_default()
        names = [str(x) for x in labels[:rows]]
        draw = ImageDraw.Draw(canvas)
        text_w = max(int(draw.textlength(t, font=font)) for t in names)
        labelled = Image.new("RGBA", (canvas.width + text_w + 12, canvas.height), bg + (255,))
        labelled.alpha_composite(canvas, (text_w + 12, 0))
        draw = ImageDraw.Draw(labelled)
        row_h = (h + pad) * scale
        for r, t in enumerate(names):
            draw.text((6, pad * scale + r * row_h + (h * scale) // 2 - 6), t, fill=(230, 230, 230, 255), font=font)
        canvas = labelled
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
