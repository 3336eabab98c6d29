"""A teacher for distillation: the PyTorch ContextUnet rebuilt from an exported model.

    teacher = load_teacher(Path("models/model.json"))
    target = teacher.guided_eps(x_t, t, context)   # what a guidance-distilled student learns

The exported `model.onnx` keeps every parameter as a named initializer (`conv_in.weight`, ...)
except GroupNorm's affine weight and bias, which the exporter turns into anonymous constants
feeding the `/<module>/Mul` and `/<module>/Add` nodes after each InstanceNormalization. Both are
read back here, so the committed model is all a distillation run needs: the resume checkpoint of
the run that trained it is not committed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import torch
import torch.nn as nn

from .export import sha256_file
from .model import ContextUnet, ModelConfig
from .schedule import guided_eps


class TeacherError(Exception):
    pass


def _norm_params(graph, inits: Dict[str, "object"]) -> Dict[str, "object"]:
    """GroupNorm weight/bias from the Mul/Add nodes named after each norm module."""
    from onnx import numpy_helper

    out = {}
    for node in graph.node:
        if node.op_type not in ("Mul", "Add") or not node.name.startswith("/"):
            continue
        parts = node.name.strip("/").split("/")
        if len(parts) < 2 or parts[-1] not in ("Mul", "Add") or "norm" not in parts[-2]:
            continue
        consts = [i for i in node.input if i in inits]
        if len(consts) != 1:
            continue
        key = ".".join(parts[:-1]) + (".weight" if parts[-1] == "Mul" else ".bias")
        out[key] = numpy_helper.to_array(inits[consts[0]]).reshape(-1)
    return out


def state_dict_from_onnx(path: Path, model: nn.Module) -> Dict[str, torch.Tensor]:
    """Map an exported model.onnx back onto `model`'s state_dict keys, checking every shape."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise TeacherError("reading a teacher needs the onnx package: apt-get install python3-onnx") from e
    try:
        proto = onnx.load(str(path))
    except Exception as e:
        raise TeacherError(f"{path} is not a readable ONNX model ({e}); re-export it with `npm run export`") from e
    inits = {i.name: i for i in proto.graph.initializer}
    arrays = {k: numpy_helper.to_array(v) for k, v in inits.items() if not k.startswith("onnx::")}
    arrays.update(_norm_params(proto.graph, inits))
    sd = model.state_dict()
    missing: List[str] = []
    out: Dict[str, torch.Tensor] = {}
    for k, ref in sd.items():
        if k not in arrays:
            missing.append(k)
            continue
        a = torch.from_numpy(arrays[k].copy()).to(ref.dtype)
        if a.numel() != ref.numel():
            raise TeacherError(f"{path}: parameter {k} has {a.numel()} values, the model config expects "
                               f"{ref.numel()}; is model.json from the same export?")
        out[k] = a.reshape(ref.shape)
    if missing:
        raise TeacherError(f"{path} lacks {len(missing)} parameters ({', '.join(missing[:4])}...); it must be an "
                           "fp32 model.onnx written by `npm run export`")
    return out


class Teacher:
    """A frozen exported model, evaluated in PyTorch to produce distillation targets."""

    def __init__(self, model: ContextUnet, meta: Dict):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.meta = meta
        self.categories: List[str] = list(meta["categories"])
        self.name: str = meta.get("name", "teacher")

    def to(self, device: torch.device) -> "Teacher":
        self.model.to(device)
        return self

    @torch.no_grad()
    def guided_eps(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, scale: float) -> torch.Tensor:
        """eps_u + scale (eps_c - eps_u), one batched pass over [conditional; null] rows.

        Rows whose context is already null get eps_u (the two halves coincide)."""
        if scale == 1.0:
            return self.model(x, t, context)
        both = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, torch.zeros_like(context)]))
        b = x.shape[0]
        return guided_eps(both[:b], both[b:], scale)


def load_checkpoint_teacher(path: Path) -> Teacher:
    """The EMA network of a training checkpoint.pt (a run's own or a lean EMA-only one), as a teacher.

    Lets a GPU session distil a student straight from the teacher it just trained, before any export."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        cfg = ck["config"]
        weights = ck["ema"]
    except Exception as e:
        raise TeacherError(f"{path} is not a readable training checkpoint ({e}); pass a model.json or a "
                           "checkpoint.pt written by `npm run train`") from e
    model = ContextUnet(ModelConfig.from_dict(cfg["model"]))
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise TeacherError(f"{path}: its EMA weights do not fit its own config ({e})") from e
    meta = {"name": Path(cfg.get("out", "")).name or path.stem, "categories": list(ck["categories"]),
            "schedule": {"name": "linear", **cfg["schedule"]}, "training": {"steps": ck.get("step"),
                                                                         "model": cfg["model"]}}
    return Teacher(model, meta)


def load_teacher(model_json: Path) -> Teacher:
    """Rebuild the fp32 network described by an exported model.json (see plugin/MODEL_FORMAT.md),
    or take the EMA network of a training checkpoint (any path that does not end in .json)."""
    model_json = Path(model_json)
    if model_json.suffix != ".json":
        if not model_json.exists():
            raise TeacherError(f"no teacher at {model_json}; pass an exported model.json or a checkpoint.pt")
        return load_checkpoint_teacher(model_json)
    try:
        meta = json.loads(model_json.read_text())
    except FileNotFoundError:
        raise TeacherError(f"no teacher at {model_json}; pass the model.json of an exported model, "
                           "e.g. models/model.json") from None
    except json.JSONDecodeError as e:
        raise TeacherError(f"{model_json} is not valid JSON ({e})") from e
    if meta.get("format") != "spritediffusion-model":
        raise TeacherError(f"{model_json} is not a spritediffusion model.json (format {meta.get('format')!r})")
    mcfg = meta.get("training", {}).get("model")
    if not mcfg:
        raise TeacherError(f"{model_json} has no training.model config; re-export it with `npm run export`")
    entry = meta["files"]["model"]
    onnx_path = model_json.parent / entry["path"]
    if not onnx_path.exists():
        raise TeacherError(f"{onnx_path} is missing (named by {model_json})")
    if sha256_file(onnx_path) != entry.get("sha256"):
        raise TeacherError(f"{onnx_path} does not match the sha256 in {model_json} (corrupt or replaced file); "
                           "restore it or re-export")
    model = ContextUnet(ModelConfig.from_dict(mcfg))
    model.load_state_dict(state_dict_from_onnx(onnx_path, model))
    return Teacher(model, meta)
