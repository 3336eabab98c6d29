"""Smaller downloads: fp16 and int8 weight variants of an exported ONNX model (float32 compute).

fp16: every float32 initializer with more than 16 elements is stored as float16 and followed by
a Cast back to float32.

int8: every float32 initializer with at least two dimensions and more than 16 elements (conv and
linear weights) is stored as int8 with one symmetric scale per output channel (axis 0) and
followed by a DequantizeLinear back to float32, except the first and last convolutions and the
full-resolution paths (`FP16_IN_INT8`), which are stored as float16; biases and norm parameters
stay float32.
Inputs, outputs and arithmetic stay float32, so it runs on every ONNX Runtime backend. The
same rounding is available in PyTorch (`fake_quant_int8`) so quality can be evaluated before
shipping. Needs the `onnx` Python package (Debian: python3-onnx).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch


def quantize_per_channel(w: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output channel: returns (q int8, scale float32[O])."""
    flat = w.reshape(w.shape[0], -1).astype(np.float32)
    scale = (np.abs(flat).max(axis=1) / np.float32(127.0)).astype(np.float32)
    scale[scale == 0] = np.float32(1.0)
    q = np.clip(np.round(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def quantizable(shape, numel: int, min_elements: int = 16) -> bool:
    return len(shape) >= 2 and numel > min_elements


# Weights an int8 file stores as float16: the network's first and last convolutions and the
# full-resolution paths of a patch-stem model. In the distilled fast model, int8 rounding of
# conv_out alone moved the denoiser's output by 0.029 RMS of the whole network's 0.036 (skip_in
# 0.011, conv_in 0.009, every other tensor 0.006 or less); these are under 1% of its weights.
FP16_IN_INT8 = ("conv_in.", "conv_out.", "skip_in.", "refine_in.", "refine_out.")


def int8_keeps_fp16(name: str) -> bool:
    return name.startswith(FP16_IN_INT8)


def fake_quant_int8(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The ONNX variant's weights as PyTorch sees them after DequantizeLinear (or the Cast back)."""
    out = {}
    for k, v in state.items():
        if not (v.is_floating_point() and quantizable(v.shape, v.numel())):
            out[k] = v
        elif int8_keeps_fp16(k):
            out[k] = v.half().to(v.dtype)
        else:
            q, s = quantize_per_channel(v.detach().cpu().numpy())
            deq = q.reshape(q.shape[0], -1).astype(np.float32) * s[:, None]
            out[k] = torch.from_numpy(deq.reshape(q.shape)).to(v.dtype)
    return out


def fake_quant_fp16(state: Dict[str, torch.Tensor], min_elements: int = 16) -> Dict[str, torch.Tensor]:
    """The fp16 variant's weights (see convert_fp16_weights) as PyTorch sees them after the Cast back."""
    return {k: (v.half().float() if v.is_floating_point() and v.numel() > min_elements else v)
            for k, v in state.items()}


def _rewrite_weights(src: Path, dst: Path, replace) -> int:
    """Rewrite an ONNX file's initializers: `replace(init, array)` returns None to keep one, or
    (new initializers, node producing the original name). Returns how many were replaced."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    keep, nodes = [], []
    for init in g.initializer:
        new = replace(init, numpy_helper.to_array(init))
        if new is None:
            keep.append(init)
        else:
            keep.extend(new[0])
            nodes.append(new[1])
    outs = {nd.output[0] for nd in nodes}
    inputs = [i for i in g.input if i.name not in outs]  # older exporters list initializers as inputs
    del g.input[:]
    g.input.extend(inputs)
    del g.initializer[:]
    g.initializer.extend(keep)
    allnodes = nodes + list(g.node)
    del g.node[:]
    g.node.extend(allnodes)
    onnx.checker.check_model(m)
    tmp = dst.with_name(dst.name + ".tmp")
    onnx.save(m, str(tmp))
    tmp.replace(dst)
    return len(nodes)


def convert_int8_weights(src: Path, dst: Path) -> int:
    """Write dst with int8 per-channel weights (DequantizeLinear); returns how many were quantized."""
    from onnx import TensorProto, helper, numpy_helper

    def replace(init, arr):
        if init.data_type != TensorProto.FLOAT or not quantizable(arr.shape, arr.size):
            return None
        if int8_keeps_fp16(init.name):
            return _fp16_cast(init.name, arr)
        q, s = quantize_per_channel(arr)
        base = init.name
        inits = [numpy_helper.from_array(q, base + "__q"), numpy_helper.from_array(s, base + "__scale"),
                 numpy_helper.from_array(np.zeros(s.shape, np.int8), base + "__zp")]
        node = helper.make_node("DequantizeLinear", [base + "__q", base + "__scale", base + "__zp"], [base],
                                axis=0, name=base + "__dq")
        return inits, node

    return _rewrite_weights(src, dst, replace)


def _fp16_cast(name: str, arr: np.ndarray):
    """A float16 initializer and the Cast that restores `name` as float32 (for _rewrite_weights)."""
    from onnx import TensorProto, helper, numpy_helper

    half = name + "__fp16"
    node = helper.make_node("Cast", [half], [name], to=TensorProto.FLOAT, name=name + "__cast")
    return [numpy_helper.from_array(arr.astype(np.float16), half)], node


def convert_fp16_weights(src: Path, dst: Path, min_elements: int = 16) -> int:
    """Write dst with float16 weights (Cast back to float32); returns how many were converted."""
    from onnx import TensorProto

    def replace(init, arr):
        if init.data_type != TensorProto.FLOAT or arr.size <= min_elements:
            return None
        return _fp16_cast(init.name, arr)

    return _rewrite_weights(src, dst, replace)
