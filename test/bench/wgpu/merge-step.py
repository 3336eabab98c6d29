#!/usr/bin/python3
"""Writes the denoiser and the update graph of an exported model merged into one ONNX graph (one session run
per step), for counting dispatches against the two graphs (test/bench/wgpu/dispatches.sh).

    /usr/bin/python3 test/bench/wgpu/merge-step.py models/model.json OUT.onnx

The denoiser's `noise` feeds the update's `eps`; the update's inputs and outputs are prefixed `upd/`; the
denoiser's batch is renamed `rows` so it stays apart from the update's `batch` (rows = 2 x batch with guidance).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
from onnx import compose


def merged(model_json: Path) -> onnx.ModelProto:
    meta = json.loads(model_json.read_text())
    den = onnx.load(str(model_json.parent / meta["files"]["model"]["path"]))
    upd = onnx.load(str(model_json.parent / meta["files"]["update"]["path"]))
    for vi in [*den.graph.input, *den.graph.output, *den.graph.value_info]:
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param == "batch":
                dim.dim_param = "rows"
    upd = compose.add_prefix(upd, prefix="upd/")
    m = compose.merge_models(den, upd, io_map=[(meta["onnx"]["output"], "upd/eps")],
                             outputs=["upd/x_next", "upd/x_next_rep"])
    onnx.checker.check_model(m)
    return m


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    onnx.save(merged(Path(sys.argv[1])), sys.argv[2])
