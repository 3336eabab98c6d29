"""fp16-weight variant of an exported ONNX model: weights stored as float16, computed in float32.

Every float32 initializer with more than 16 elements is stored as float16 and
followed by a Cast back to float32, so the graph's inputs, outputs and arithmetic
stay float32 (runs on every ONNX Runtime backend, WASM and WebGPU alike) while the
download halves. Needs the `onnx` Python package (Debian: python3-onnx).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def convert_fp16_weights(src: Path, dst: Path, min_elements: int = 16) -> int:
    """Write dst; returns the number of initializers converted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    keep, casts, n = [], [], 0
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) > min_elements:
            arr = numpy_helper.to_array(init).astype(np.float16)
            half_name = init.name + "__fp16"
            keep.append(numpy_helper.from_array(arr, half_name))
            casts.append(helper.make_node("Cast", [half_name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast"))
            n += 1
        else:
            keep.append(init)
    # graph inputs that shadow initializers (older exporters) must go
    names = {c.output[0] for c in casts}
    inputs = [i for i in g.input if i.name not in names]
    del g.input[:]
    g.input.extend(inputs)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    tmp = dst.with_name(dst.name + ".tmp")
    onnx.save(m, str(tmp))
    tmp.replace(dst)
    return n
