"""The runtime's warm-up denoiser: the fast model's design at a quarter of its widths, weights as
ConstantOfShape nodes, small enough to embed in the plugin's worker."""
import base64
import re
from pathlib import Path

import onnx
from onnx import numpy_helper

from sdtrain.warmup import WARMUP_CONFIG, build_onnx

REPO = Path(__file__).resolve().parents[2]


def test_warmup_graph_has_no_weights_and_the_fast_design():
    proto = onnx.load_from_string(build_onnx())
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["image", "timestep", "context"]
    assert [o.name for o in proto.graph.output] == ["noise"]
    # No stored weight tensor: every float initializer is tiny (shapes, scalars, frequencies).
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)
        assert arr.dtype.kind != "f" or arr.size <= 64, init.name
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "InstanceNormalization", "Sigmoid", "Gemm", "ConstantOfShape", "DepthToSpace"} <= ops
    assert len(proto.SerializeToString()) < 40_000
    assert WARMUP_CONFIG.patch == 2 and WARMUP_CONFIG.refine and WARMUP_CONFIG.up_conv_first


def test_the_embedded_graph_is_a_weightless_graph_of_this_design():
    """The TypeScript file holds such a graph (exporters of other PyTorch versions may order nodes differently,
    so the check is on what the graph must have, not on its exact nodes)."""
    ts = (REPO / "plugin/src/runtime/warmupDenoiser.ts").read_text()
    b64 = "".join(re.findall(r"'([A-Za-z0-9+/=]+)'", ts))
    embedded = onnx.load_from_string(base64.b64decode(b64))
    onnx.checker.check_model(embedded)
    fresh = onnx.load_from_string(build_onnx())
    assert [i.name for i in embedded.graph.input] == [i.name for i in fresh.graph.input]
    for init in embedded.graph.initializer:
        arr = numpy_helper.to_array(init)
        assert arr.dtype.kind != "f" or arr.size <= 64, init.name
    convs = [n for n in embedded.graph.node if n.op_type == "Conv"]
    assert len(convs) == len([n for n in fresh.graph.node if n.op_type == "Conv"])
