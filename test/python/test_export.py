"""ONNX export of a tiny run, parity in onnxruntime-node, and model.json per plugin/MODEL_FORMAT.md."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY_RUN_STEPS, TINY_SIZE, load_ckpt
from sdtrain import export as ex
from sdtrain import quantize as q

# the TorchScript-based ONNX exporter of torch 1.13 is chatty about tracing; none of it matters here
pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning",
                                        "ignore:The shape inference of prim")  # ("::" would split the filter)


def _varint(buf: bytes, i: int):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes):
    """Top-level protobuf fields: yields (number, wire_type, value bytes or int)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unexpected wire type {wt}")
        yield num, wt, v


def onnx_opsets(path: Path) -> dict:
    """{domain: version} from ModelProto.opset_import (field 8), read without the onnx package."""
    out = {}
    for num, wt, v in _fields(path.read_bytes()):
        if num == 8 and wt == 2:
            f = {n: val for n, _, val in _fields(v)}
            out[f.get(1, b"").decode()] = f[2]
    return out


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the export parity check needs Node.js 20+ with onnxruntime-node")
    if not (REPO / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("onnxruntime-node is missing: run `npm install` at the repo root")
    out = tmp_path_factory.mktemp("export") / "models"
    result = ex.export(tiny_run, out, "tiny")
    return out, result


def test_parity_within_tolerance(exported):
    out, result = exported
    par = result["parity"]
    checked = {(Path(r["model"]).name, r["output"]) for r in par}
    assert checked >= {("model.onnx", "noise"), ("update.onnx", "x_next"), ("update.onnx", "x_next_rep")}
    if (out / "model.fp16.onnx").exists():  # the optional reduced-precision variants are checked too
        assert ("model.fp16.onnx", "noise") in checked
        assert ("model.int8.onnx", "noise") in checked
    for r in par:
        limit = 1e-4  # reduced-precision variants are compared with PyTorch running the same weights
        assert 0 <= r["max_abs_diff"] < limit, r


def test_model_json_matches_format(exported, tiny_run):
    out, result = exported
    meta = json.loads((out / "model.json").read_text())
    assert result["meta"] == str(out / "model.json")
    ck = load_ckpt(tiny_run / "checkpoint.pt")
    assert meta["format"] == "spritediffusion-model" and meta["format_version"] == 1
    assert meta["name"] == "tiny"
    assert meta["categories"] == ck["categories"] == ["discs", "squares"]
    assert meta["image"] == {"size": TINY_SIZE, "channels": 4, "layout": "NCHW", "channel_order": "RGBA",
                             "value_range": [-1, 1]}
    assert meta["context"] == {"size": 2, "null": "zeros"}
    assert meta["schedule"] == {"name": "linear", "T": 500, "beta_start": 0.0001, "beta_end": 0.02}
    assert meta["prediction"] == "epsilon"
    assert meta["timestep"]["input"] == "t"
    assert meta["sampling"] == {"sampler": "ddim", "steps": 25, "guidance": 1.0, "clip_x0": True}
    files = meta["files"]
    assert set(files) >= {"model", "update"}
    for key, f in files.items():
        p = out / f["path"]
        assert p.is_file(), f"{key}: {p} missing"
        assert f["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
        assert f["bytes"] == p.stat().st_size
    assert files["model"]["path"] == "model.onnx" and files["model"]["dtype"] == "float32"
    assert files["update"]["path"] == "update.onnx"
    assert set(files) <= {"model", "model_fp16", "model_int8", "update"}
    if "model_int8" in files:
        assert files["model_int8"]["path"] == "model.int8.onnx" and files["model_int8"]["dtype"] == "int8"
        assert files["model_int8"]["bytes"] < files["model"]["bytes"]  # the tiny model is mostly graph
    if "model_fp16" in files:
        assert files["model_fp16"]["path"] == "model.fp16.onnx" and files["model_fp16"]["dtype"] == "float16"
    assert meta["onnx"]["opset"] >= 17
    assert meta["onnx"]["inputs"] == ["image", "timestep", "context"] and meta["onnx"]["output"] == "noise"
    assert meta["training"]["steps"] == TINY_RUN_STEPS and "init_from" not in meta["training"]
    assert meta["training"]["data"]["content_sha256"] == ck["data_manifest"]["content_sha256"]
    # the ONNX files themselves declare the opset model.json promises
    for name in [f["path"] for f in files.values()]:
        assert onnx_opsets(out / name).get("", 0) >= meta["onnx"]["opset"], name
    assert not list(out.glob("*.tmp"))


def test_int8_file_keeps_the_first_and_last_convolutions_in_float16(exported):
    """The layers whose int8 rounding moved the fast model's output most are stored as float16 (Cast);
    the other conv and linear weights as int8 (DequantizeLinear); parity above checks the same
    rounding in PyTorch (fake_quant_int8)."""
    import onnx

    out, _ = exported
    g = onnx.load(str(out / "model.int8.onnx")).graph
    cast = {n.output[0] for n in g.node if n.op_type == "Cast" and n.name.endswith("__cast")}
    dq = {n.output[0] for n in g.node if n.op_type == "DequantizeLinear"}
    assert {"conv_in.weight", "conv_out.weight"} <= cast
    assert not any(q.int8_keeps_fp16(n) for n in dq)
    assert "down_blocks.0.conv1.weight" in dq and "time_mlp.net.0.weight" in dq
    state = {"conv_out.weight": torch.randn(4, 8, 3, 3), "mid.conv1.weight": torch.randn(8, 8, 3, 3)}
    fq = q.fake_quant_int8(state)
    assert torch.equal(fq["conv_out.weight"], state["conv_out.weight"].half().float())
    assert not torch.equal(fq["mid.conv1.weight"], state["mid.conv1.weight"].half().float())


def test_requantize_rewrites_the_variants_of_an_exported_model(exported, tmp_path, capsys):
    src, _ = exported
    out = tmp_path / "m"
    shutil.copytree(src, out)
    meta = json.loads((out / "model.json").read_text())
    want = meta["files"]["model_int8"]["sha256"]
    # a stale int8 file (here: the fp16 bytes) with its stale record in model.json
    (out / "model.int8.onnx").write_bytes((out / "model.fp16.onnx").read_bytes())
    meta["files"]["model_int8"]["sha256"] = "0" * 64
    (out / "model.json").write_text(json.dumps(meta))
    # a failing parity check leaves everything as it was
    with pytest.raises(ex.ExportError, match="is unchanged"):
        ex.requantize(out / "model.json", tolerance=0.0)
    assert json.loads((out / "model.json").read_text())["files"]["model_int8"]["sha256"] == "0" * 64
    assert (out / "model.int8.onnx").read_bytes() == (out / "model.fp16.onnx").read_bytes()
    assert not [p for p in out.iterdir() if p.is_dir()], "no temporary folder left behind"
    # the CLI rewrites both variants exactly as the exporter wrote them and records their hashes
    assert ex.main(["--requantize", str(out / "model.json")]) == 0
    files = json.loads((out / "model.json").read_text())["files"]
    assert files["model_int8"]["sha256"] == want == hashlib.sha256((out / "model.int8.onnx").read_bytes()).hexdigest()
    assert files["model_int8"]["bytes"] == (out / "model.int8.onnx").stat().st_size
    assert "rewrote" in capsys.readouterr().out
    assert ex.main(["--requantize", str(tmp_path / "none.json")]) == 2


def test_export_from_missing_run_fails_clearly(tmp_path):
    missing = tmp_path / "no-such-run"
    with pytest.raises(ex.ExportError, match="no checkpoint at") as e:
        ex.export(missing, tmp_path / "out", "x")
    assert str(missing) in str(e.value)
    assert not (tmp_path / "out" / "model.json").exists()


def test_export_errors_via_cli(tmp_path, capsys):
    assert ex.main(["--run", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    bogus = tmp_path / "bogus.pt"
    torch.save({"weights": torch.zeros(1)}, bogus)
    assert ex.main(["--run", str(bogus), "--out", str(tmp_path / "o")]) == 2
    assert "not a spritediffusion checkpoint" in capsys.readouterr().err
    garbage = tmp_path / "garbage" / "checkpoint.pt"
    garbage.parent.mkdir()
    garbage.write_bytes(b"nope")
    assert ex.main(["--run", str(garbage.parent), "--out", str(tmp_path / "o")]) == 2
    assert "unreadable" in capsys.readouterr().err


def test_no_int8_leaves_fp16_as_the_smallest_variant(tiny_run, tmp_path, capsys):
    out = tmp_path / "models"
    assert ex.main(["--run", str(tiny_run), "--out", str(out), "--name", "tiny", "--no-int8"]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert set(meta["files"]) == {"model", "update", "model_fp16"}
    assert not (out / "model.int8.onnx").exists()
    assert meta["files"]["model_fp16"]["bytes"] == (out / "model.fp16.onnx").stat().st_size
    assert "parity model.fp16.onnx" in capsys.readouterr().out


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_export_leaves_the_previous_model_loadable(exported, tiny_run, tmp_path, monkeypatch):
    """The export writes and checks everything beside --out first: a failure after its first file
    (here the fp16 conversion) changes nothing in --out, and leaves no staging folder behind."""
    from sdtrain.teacher import load_teacher

    src, _ = exported
    out = tmp_path / "models"
    shutil.copytree(src, out)
    before = _files(out)

    def broken(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(ex.VARIANTS, "model_fp16", (".fp16.onnx", broken) + ex.VARIANTS["model_fp16"][2:])
    with pytest.raises(OSError):
        ex.export(tiny_run, out, "tiny-next")
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["models"]
    teacher = load_teacher(out / "model.json")  # hashes match: the previous model still loads
    assert teacher.name == "tiny"


def test_a_bad_out_is_one_line_naming_it(tiny_run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert ex.main(["--run", str(tiny_run), "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(blocker) in err and "not a folder" in err
    assert ex.main(["--run", str(tiny_run), "--out", "/proc/spritediffusion-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "/proc/spritediffusion-model" in err


def test_export_without_out_writes_into_the_run_folder(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert ex.main(["--run", str(run), "--no-parity"]) == 0
    assert (run / "export" / "model.json").is_file()
    assert json.loads((run / "export" / "model.json").read_text())["name"] == "run"


def test_opaque_categories_are_those_of_whole_tiles_and_reach_model_json(exported, tiny_run, tmp_path):
    """A category is opaque when at least 90% of its sprites have no transparent pixel; the trainer records
    them in the checkpoint and the export writes them after the categories (none for the tiny set)."""
    from sdtrain.dataset import opaque_categories
    import numpy as np
    imgs = np.zeros((20, 4, 4, 4), np.uint8)
    imgs[:10, ..., 3] = 255            # category 0: ten whole tiles
    imgs[10:, 1:3, 1:3, 3] = 255       # category 1: a sprite on transparency
    labels = np.array([0] * 10 + [1] * 10)
    assert opaque_categories(imgs, labels, ["tile", "sprite"]) == ["tile"]
    imgs[0, 0, 0, 3] = 127             # one tile with a hole: 90% whole still counts
    assert opaque_categories(imgs, labels, ["tile", "sprite"]) == ["tile"]
    imgs[1, 0, 0, 3] = 0               # two of ten: no longer
    assert opaque_categories(imgs, labels, ["tile", "sprite"]) == []
    assert opaque_categories(imgs[..., :3], labels, ["tile", "sprite"]) == []
    out, _ = exported
    assert "opaque" not in json.loads((out / "model.json").read_text())
    ck = load_ckpt(tiny_run / "checkpoint.pt")
    assert ck["opaque"] == []
    ck["opaque"] = ["squares"]
    model = ex.build_model(ck)
    files = {"model": out / "model.onnx", "update": out / "update.onnx"}
    meta = json.loads(ex.write_meta(tmp_path, ck, model, "t", files, {"sampler": "ddim"}).read_text())
    assert list(meta)[list(meta).index("categories") + 1] == "opaque" and meta["opaque"] == ["squares"]
