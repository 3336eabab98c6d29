"""Fine-tuning: start a run from a trained network, whatever its categories.

    src = load_init_source(Path("models/model.json"))     # or a checkpoint.pt
    weights, kept, new = resize_context(src.weights, src.categories, ["blocks", "items", "weapon"])

The source is an exported model.json (the network is rebuilt from its fp32 model.onnx, see
teacher.py) or a training checkpoint.pt (its EMA weights). The new run adopts the source's network
shape (size, widths, embedding, ...), so a user need not know how the shipped model was built.

Only one parameter depends on the category set: the first layer of the context MLP,
`ctx_mlp.net.0.weight` [emb, n_context], one column per category (the null context is all zeros, so
the bias carries the unconditional embedding). A category of the new set that the source also has
keeps its learned column; a new category starts as the mean of the source's columns: an "average
category" embedding, which samples like a blend of everything the source knows and lets the
fine-tune move it from there (compared with a zero column, i.e. starting as the unconditional model,
and a random column in training/README.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .model import ModelConfig
from .teacher import TeacherError, load_teacher

# The parameter holding one column per category.
CONTEXT_WEIGHT = "ctx_mlp.net.0.weight"
# How a category the source lacks starts.
NEW_CATEGORY_INITS = ("mean", "zero", "random")

# Which parameters a fine-tune leaves as the source had them (`--freeze`): "encoder" is the U-Net's input
# convolution, down path and middle block (their time and context projections included); the time and context
# MLPs, the up path and the output train.
FROZEN_PREFIXES: Dict[str, Tuple[str, ...]] = {
    "none": (),
    "encoder": ("conv_in.", "down_blocks.", "downsamples.", "mid."),
}


def freeze(model: torch.nn.Module, part: str) -> int:
    """Stop training the parameters of `part` (a key of FROZEN_PREFIXES); returns how many tensors froze."""
    if part not in FROZEN_PREFIXES:
        raise ValueError(f"unknown --freeze {part!r}; choose one of {', '.join(FROZEN_PREFIXES)}")
    n = 0
    for name, p in model.named_parameters():
        if name.startswith(FROZEN_PREFIXES[part]):
            p.requires_grad_(False)
            n += 1
    return n


class InitSourceError(Exception):
    pass


@dataclass
class InitSource:
    """A trained network to start from: its weights, categories and shape."""
    path: Path
    weights: Dict[str, torch.Tensor]
    categories: List[str]
    model: ModelConfig
    step: Optional[int]


def load_init_source(path: Path) -> InitSource:
    """Reads an exported model.json or a training checkpoint.pt; one-line InitSourceError otherwise."""
    path = Path(path)
    if not path.exists():
        raise InitSourceError(f"--init-from {path}: no such file; pass an exported model.json "
                              "(e.g. models/model.json) or a run's checkpoint.pt")
    if path.is_dir():
        ck = path / "checkpoint.pt"
        if not ck.exists():
            raise InitSourceError(f"--init-from {path}: a folder without checkpoint.pt; pass a model.json "
                                  "or a checkpoint.pt")
        path = ck
    if path.suffix == ".json":
        try:
            t = load_teacher(path)
        except TeacherError as e:
            raise InitSourceError(f"--init-from {path}: {e}") from None
        steps = t.meta.get("training", {}).get("steps")
        return InitSource(path, t.model.state_dict(), list(t.categories), t.model.cfg,
                          steps if isinstance(steps, int) else None)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        weights = ck["ema"]
        categories = list(ck["categories"])
        model = ModelConfig.from_dict(ck["config"]["model"])
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InitSourceError(f"--init-from {path}: neither an exported model.json nor a readable training "
                              f"checkpoint ({first}); pass models/model.json or a run's checkpoint.pt") from None
    return InitSource(path, weights, categories, model, ck.get("step"))


def resize_context(weights: Dict[str, torch.Tensor], src: Sequence[str], dst: Sequence[str],
                   init: str = "mean", generator: Optional[torch.Generator] = None
                   ) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
    """`weights` with the context input resized from categories `src` to `dst`.

    Same-named categories keep their column; a sub-category `parent/name` of a source category starts
    from its parent's column (training/scripts/subclusters.py); other new ones start as `init` ("mean" of
    the source columns, "zero" = the unconditional embedding, "random" = the layer's default init scale).
    Returns (weights, kept names, new names); the input dict is not modified."""
    if init not in NEW_CATEGORY_INITS:
        raise ValueError(f"unknown new-category init {init!r}; choose one of {', '.join(NEW_CATEGORY_INITS)}")
    w = weights[CONTEXT_WEIGHT]
    if w.shape[1] != len(src):
        raise ValueError(f"{CONTEXT_WEIGHT} has {w.shape[1]} columns for {len(src)} categories")
    out = dict(weights)
    cols = torch.empty(w.shape[0], len(dst), dtype=w.dtype)
    kept, new = [], []
    bound = 1.0 / max(1, len(dst)) ** 0.5  # nn.Linear's default uniform bound for this fan-in
    for j, name in enumerate(dst):
        if name in src:
            cols[:, j] = w[:, list(src).index(name)]
            kept.append(name)
            continue
        new.append(name)
        parent = name.split("/", 1)[0]
        if "/" in name and parent in src:
            cols[:, j] = w[:, list(src).index(parent)]
        elif init == "mean":
            cols[:, j] = w.mean(dim=1)
        elif init == "zero":
            cols[:, j] = 0
        else:
            cols[:, j] = (torch.rand(w.shape[0], generator=generator, dtype=w.dtype) * 2 - 1) * bound
    out[CONTEXT_WEIGHT] = cols
    return out, kept, new
