"""The exporter's graph rewrites (sdtrain/fuse.py): fewer operators, the same parameters, applied once.

Numerical equality with PyTorch is the exporter's parity check (test_export.py runs it on the fused files);
here: what the rewrites change in the graph, that the network still rebuilds from it, and that a graph
exported before the rewrites (torch's own export) is rewritten by `--requantize`."""
from __future__ import annotations

import collections
import json
import shutil

import onnx
import pytest
import torch

from conftest import load_ckpt
from sdtrain import export as ex
from sdtrain.fuse import fuse_file
from sdtrain.teacher import state_dict_from_onnx

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore:The shape inference of prim")


def ops(path):
    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


@pytest.fixture(scope="module")
def plain(tiny_run, tmp_path_factory):
    """The tiny run's network as torch exports it, before any rewrite."""
    model = ex.build_model(load_ckpt(tiny_run / "checkpoint.pt"))
    path = tmp_path_factory.mktemp("fuse") / "plain.onnx"
    ex.export_model(model, path)
    return model, path


def test_group_norms_and_projections_are_rewritten(plain, tmp_path):
    model, path = plain
    norms = sum(isinstance(m, torch.nn.GroupNorm) for m in model.modules())
    blocks = len(model.down_blocks) + 1 + len(model.up_blocks)
    before = ops(path)
    assert before["InstanceNormalization"] == norms and before["Gemm"] == 4 + 2 * blocks
    done = fuse_file(path, tmp_path / "fused.onnx")
    after = ops(tmp_path / "fused.onnx")
    assert done == {"group_norms": norms, "projections": 2 * blocks - 2}
    assert after["InstanceNormalization"] == 0
    assert after["LayerNormalization"] == after["BatchNormalization"] == norms
    # the time and context MLPs' two Gemms each, plus one merged Gemm per embedding
    assert after["Gemm"] == 4 + 2 and after["Split"] == 2
    # each GroupNorm lost its affine Mul and Add, each block its "1 + c_proj" Add (now in the bias, constant)
    assert before["Mul"] - after["Mul"] == norms
    # a second pass finds nothing to do
    assert fuse_file(tmp_path / "fused.onnx", tmp_path / "again.onnx") == {"group_norms": 0, "projections": 0}


def test_the_network_rebuilds_from_the_fused_graph(plain, tmp_path):
    model, path = plain
    fuse_file(path, tmp_path / "fused.onnx")
    got = state_dict_from_onnx(tmp_path / "fused.onnx", model)
    want = model.state_dict()
    assert set(got) == set(want)
    for k, v in want.items():
        assert torch.equal(got[k], v), k


def test_requantize_fuses_a_model_exported_before_the_rewrites(plain, exported_tiny, tmp_path):
    """A model.json whose model.onnx is torch's plain export: --requantize rewrites it (parity-checked)
    and records the new hash; the files then equal what the exporter writes today."""
    _, path = plain
    src, _ = exported_tiny
    out = tmp_path / "old"
    shutil.copytree(src, out)
    shutil.copy(path, out / "model.onnx")
    meta = json.loads((out / "model.json").read_text())
    meta["files"]["model"].update({"sha256": ex.sha256_file(out / "model.onnx"), "bytes": path.stat().st_size})
    (out / "model.json").write_text(json.dumps(meta))
    assert ops(out / "model.onnx")["InstanceNormalization"] > 0
    assert ex.main(["--requantize", str(out / "model.json")]) == 0
    assert ops(out / "model.onnx")["InstanceNormalization"] == 0
    new = json.loads((out / "model.json").read_text())
    assert new["files"]["model"]["sha256"] != meta["files"]["model"]["sha256"]
    assert (out / "model.int8.onnx").read_bytes() == (src / "model.int8.onnx").read_bytes()


@pytest.fixture(scope="module")
def exported_tiny(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("fuse-export") / "models"
    return out, ex.export(tiny_run, out, "tiny")


def test_update_graph_reads_its_coefficients_with_one_split(tmp_path):
    """Each indexed scalar was a Gather, one GPU dispatch per step each; one Split gives all six."""
    from sdtrain.model import ModelConfig

    ex.export_update(ModelConfig(size=8, channels=4, n_context=2), tmp_path / "update.onnx")
    graph = onnx.load(str(tmp_path / "update.onnx")).graph
    assert [n.input[0] for n in graph.node if n.op_type == "Split"] == ["coef"]
    # the Gathers left read shapes (the batch size), which onnxruntime runs on the CPU
    shapes = {n.output[0] for n in graph.node if n.op_type == "Shape"}
    assert all(n.input[0] in shapes for n in graph.node if n.op_type == "Gather")
    assert not [n for n in graph.node if "guidance" in n.input and n.op_type == "Gather"]
