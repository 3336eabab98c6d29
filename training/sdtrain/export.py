"""Export a trained run to ONNX + model.json, and check ONNX Runtime against PyTorch.

    npm run export -- --run runs/dcss32 --out models

Writes model.onnx (the EMA denoiser, opset 17, dynamic batch; inputs image [B,C,H,W],
timestep [B], context [B,K]; output noise [B,C,H,W]), update.onnx (the weightless
sampler-step graph that keeps the runtime's loop on the GPU) and model.json
(plugin/MODEL_FORMAT.md). Parity: both graphs run in ONNX Runtime (onnxruntime-node)
on random inputs and must match PyTorch within --tolerance (default 1e-4).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .dataset import load_dataset, opaque_categories
from .fuse import fuse_file
from .model import ContextUnet, ModelConfig, count_flops, count_params
from .schedule import ScheduleConfig
from .quantize import convert_fp16_weights, convert_int8_weights, fake_quant_fp16, fake_quant_int8
from .update import UpdateGraph

FORMAT_VERSION = 1
DTYPES = {"model": "float32", "model_fp16": "float16", "model_int8": "int8"}
OPSET = 17
REPO = Path(__file__).resolve().parents[2]


class ExportError(Exception):
    pass


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_run(run: Path) -> Dict:
    ck_path = run / "checkpoint.pt" if run.is_dir() else run
    if not ck_path.exists():
        raise ExportError(f"no checkpoint at {ck_path}; train first (`npm run train -- --out {run}`)")
    try:
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ExportError(f"checkpoint {ck_path} is unreadable ({e}); re-run or resume the training") from e
    if "ema" not in ck or "config" not in ck:
        raise ExportError(f"{ck_path} is not a spritediffusion checkpoint (no 'ema'/'config')")
    return ck


def build_model(ck: Dict) -> ContextUnet:
    mcfg = ModelConfig.from_dict(ck["config"]["model"])
    model = ContextUnet(mcfg)
    model.load_state_dict(ck["ema"])
    return model.eval()


def _export(module: nn.Module, args, path: Path, inputs: List[str], outputs: List[str], dyn: Dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    # The tracer's notes (shape inference of constants, TracerWarning) are about its own internals;
    # the parity check below is what tells whether the graph is right.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), input_names=inputs, output_names=outputs,
                          dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True)
    tmp.replace(path)


def export_model(model: ContextUnet, path: Path) -> None:
    c = model.cfg
    args = (torch.zeros(2, c.channels, c.size, c.size), torch.ones(2), torch.zeros(2, c.n_context))
    _export(model, args, path, ["image", "timestep", "context"], ["noise"],
            {"image": {0: "batch"}, "timestep": {0: "batch"}, "context": {0: "batch"}, "noise": {0: "batch"}})


def export_update(cfg: ModelConfig, path: Path) -> None:
    shape = (2, cfg.channels, cfg.size, cfg.size)
    args = (torch.zeros(shape), torch.zeros((4,) + shape[1:]), torch.zeros(shape),
            torch.tensor([1.0, 0.1, 1.0, -0.1, 0.0, 1.0]), torch.tensor([2.0]))
    _export(UpdateGraph(), args, path, ["x", "eps", "z", "coef", "guidance"], ["x_next", "x_next_rep"],
            {"x": {0: "batch"}, "eps": {0: "rows"}, "z": {0: "batch"}, "x_next": {0: "batch"},
             "x_next_rep": {0: "rows"}})


def _t(x: torch.Tensor) -> Dict:
    return {"dims": list(x.shape), "data": [float(v) for v in x.flatten()]}


def parity(model: ContextUnet, model_path: Path, update_path: Path, seed: int = 0,
           extra_models: Sequence[Tuple[Path, Callable]] = ()) -> List[Dict]:
    """Run the graphs in onnxruntime-node on random inputs; return max abs diffs to PyTorch.

    Each extra model (a reduced-precision variant) is compared with PyTorch running the same
    reduced weights (its `transform` of the state dict), so the check stays at fp32 tolerance;
    its distance to the full-precision output is reported as `vs_fp32`.
    """
    c = model.cfg
    g = torch.Generator().manual_seed(seed)
    B = 3
    x = torch.randn(B, c.channels, c.size, c.size, generator=g)
    t = torch.randint(1, 501, (B,), generator=g).float()
    ctx = torch.zeros(B, c.n_context)
    ctx[0, 0] = 1.0
    ctx[1, :2] = 0.5
    with torch.no_grad():
        noise = model(x, t, ctx)
    eps_all = torch.randn(2 * B, c.channels, c.size, c.size, generator=g)
    z = torch.randn(B, c.channels, c.size, c.size, generator=g)
    coef = torch.tensor([0.6, 0.8, 1.01, -0.02, 0.05, 1.0])
    guid = torch.tensor([2.5])
    xn, xr = UpdateGraph()(x, eps_all, z, coef, guid)
    spec = {"runs": [
        {"model": str(model_path), "feeds": {"image": _t(x), "timestep": _t(t), "context": _t(ctx)},
         "expected": {"noise": _t(noise)}},
        {"model": str(update_path), "feeds": {"x": _t(x), "eps": _t(eps_all), "z": _t(z), "coef": _t(coef),
                                              "guidance": _t(guid)},
         "expected": {"x_next": _t(xn), "x_next_rep": _t(xr)}},
    ]}
    for extra, transform in extra_models:
        variant = copy.deepcopy(model)
        variant.load_state_dict(transform(model.state_dict()))
        with torch.no_grad():
            vnoise = variant(x, t, ctx)
        spec["runs"].append({**spec["runs"][0], "model": str(extra), "expected": {"noise": _t(vnoise)},
                             "vs_fp32": float((vnoise - noise).abs().max())})
    node = shutil.which("node")
    if not node:
        raise ExportError("parity check needs Node.js (node) with onnxruntime-node: install Node 20+ and run "
                          "`npm install`, or pass --no-parity")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "cases.json"
        p.write_text(json.dumps(spec))
        r = subprocess.run([node, str(REPO / "training" / "parity.mjs"), str(p)], capture_output=True, text=True,
                           cwd=str(REPO))
    if r.returncode != 0:
        raise ExportError(f"parity check failed to run: {r.stderr.strip() or r.stdout.strip()}")
    results = json.loads(r.stdout.strip().splitlines()[-1])["results"]
    vs = {run["model"]: run.get("vs_fp32") for run in spec["runs"]}
    for res in results:
        if vs.get(res["model"]) is not None:
            res["vs_fp32"] = vs[res["model"]]
    return results


# model.json key -> (file suffix, ONNX rewrite, the same rounding in PyTorch, label)
VARIANTS = {
    "model_fp16": (".fp16.onnx", convert_fp16_weights, fake_quant_fp16, "float16 weights"),
    "model_int8": (".int8.onnx", convert_int8_weights, fake_quant_int8,
                   "int8 per-channel weights, first and last convolutions float16"),
}


def checkpoint_opaque(ck: Dict) -> List[str]:
    """The checkpoint's opaque categories (see dataset.opaque_categories); for a checkpoint saved before they
    were recorded, read from the dataset it trained on when that is still there (else none)."""
    if ck.get("opaque") is not None:
        return list(ck["opaque"])
    data = ck.get("config", {}).get("data")
    if data and Path(data).exists():
        d = load_dataset(Path(data))
        if list(d["categories"]) == list(ck["categories"]):
            return opaque_categories(d["images"][~d["held_out"]], d["labels"][~d["held_out"]], d["categories"])
    return []


def write_meta(out: Path, ck: Dict, model: ContextUnet, name: str, files: Dict[str, Path],
               sampling: Dict) -> Path:
    cfg = ck["config"]
    sch = ScheduleConfig(**cfg["schedule"])
    manifest = ck.get("data_manifest", {}) or {}
    meta = {
        "format": "spritediffusion-model",
        "format_version": FORMAT_VERSION,
        "name": name,
        "categories": list(ck["categories"]),
        "image": {"size": model.cfg.size, "channels": model.cfg.channels, "layout": "NCHW",
                  "channel_order": "RGBA", "value_range": [-1, 1]},
        "context": {"size": model.cfg.n_context, "null": "zeros"},
        "schedule": {"name": sch.name, "T": sch.T, "beta_start": sch.beta_start, "beta_end": sch.beta_end},
        "prediction": "epsilon",
        "timestep": {"input": "t", "encoding": "integer t in 1..T as float32; the network encodes it itself"},
        "sampling": sampling,
        "files": {k: {"path": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size,
                      **({"dtype": DTYPES[k]} if k in DTYPES else {})} for k, p in files.items()},
        "onnx": {"opset": OPSET, "inputs": ["image", "timestep", "context"], "output": "noise"},
        "training": {
            "steps": ck["step"], "images_seen": ck.get("images_seen"),
            "train_seconds": round(ck.get("train_seconds", 0.0), 1),
            "params": count_params(model), "gflop_per_forward": round(count_flops(model) / 1e9, 4),
            "model": model.cfg.to_dict(),
            "recipe": {k: cfg[k] for k in ("batch", "lr", "warmup", "ema_decay", "cond_drop", "min_snr_gamma",
                                           "balance", "flip", "weight_decay")},
            "data": {"source": manifest.get("source"), "counts": manifest.get("counts"),
                     "content_sha256": manifest.get("content_sha256")},
        },
    }
    opaque = checkpoint_opaque(ck)
    if opaque:
        items = list(meta.items())
        at = [k for k, _ in items].index("categories") + 1
        meta = dict(items[:at] + [("opaque", list(opaque))] + items[at:])
    if cfg.get("init_from"):
        # A fine-tune: steps and images_seen count this run only, on top of the source's training.
        meta["training"]["init_from"] = {"source": cfg["init_from"], "freeze": cfg.get("freeze", "none")}
    if cfg.get("teacher"):
        # A guidance-distilled student: its plain prediction already is the teacher's guided one,
        # so it samples with guidance 1 (one row per sprite).
        meta["training"]["distilled"] = {"teacher": cfg["teacher"], "guidance": cfg.get("teacher_guidance")}
        if sampling.get("guidance", 1.0) != 1.0:
            print(f"WARNING: {name} is guidance-distilled (scale {cfg.get('teacher_guidance')} baked in); a default "
                  f"guidance of {sampling['guidance']} applies guidance on top of that", file=sys.stderr)
    path = out / "model.json"
    tmp = path.with_name("model.json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(path)
    return path


def report_parity(results: List[Dict], tolerance: float, failure_note: str = "") -> None:
    """Prints each parity result; raises ExportError at the first one at or above `tolerance`."""
    for r in results:
        extra = f" (its weights vs fp32: {r['vs_fp32']:.3e})" if "vs_fp32" in r else ""
        print(f"parity {Path(r['model']).name}:{r['output']}: max |onnxruntime - pytorch| = "
              f"{r['max_abs_diff']:.3e}{extra}")
        if not r["max_abs_diff"] < tolerance:
            raise ExportError(f"parity failed for {Path(r['model']).name}: max abs difference "
                              f"{r['max_abs_diff']:.3e} >= {tolerance}{failure_note}")


def staging_dir(out: Path) -> Path:
    """A new empty folder beside `out` (same file system, so its files move in by rename).

    Raises ExportError naming `out` and the problem when it cannot be written."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: exists and is not a folder; choose a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    except OSError as e:
        raise ExportError(f"--out {out}: cannot write there ({e.strerror or e}); choose a writable folder") from None


def move_in(stage: Path, out: Path, names: List[str]) -> None:
    """Moves the staged files into `out`, model.json last, with Ctrl-C and SIGTERM held off meanwhile,
    so `out` holds either the previous model or the new one, never a mix (renames need no space)."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for n in sorted(names, key=lambda n: n == "model.json"):
            os.replace(stage / n, out / n)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def export(run: Path, out: Path, name: str, check: bool = True, tolerance: float = 1e-4,
           sampling: Optional[Dict] = None, fp16: bool = True, int8: bool = True) -> Dict:
    """Exports a run into `out`. Every file is written and parity-checked in a folder beside `out`
    first; only then do they move in (model.json last), so a failure, a full disk or an interrupt
    leaves the model already in `out` loadable."""
    ck = load_run(run)
    model = build_model(ck)
    stage = staging_dir(out)
    try:
        result = _export_into(stage, ck, model, name, check, tolerance, sampling, fp16, int8)
        move_in(stage, out, [p.name for p in stage.iterdir()])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    meta_path = out / "model.json"
    print(f"wrote {meta_path}")
    return {"parity": result, "meta": str(meta_path)}


def _export_into(out: Path, ck: Dict, model: ContextUnet, name: str, check: bool, tolerance: float,
                 sampling: Optional[Dict], fp16: bool, int8: bool) -> List[Dict]:
    mpath, upath = out / "model.onnx", out / "update.onnx"
    export_model(model, mpath)
    try:
        fused = fuse_file(mpath, mpath)
    except ImportError:
        raise ExportError("the exporter rewrites model.onnx with the onnx package: sudo apt-get install -y python3-onnx")
    export_update(model.cfg, upath)
    print(f"exported {mpath.name} ({mpath.stat().st_size / 1e6:.2f} MB; {fused['group_norms']} group norms and "
          f"{fused['projections']} projections fused) and {upath.name}")
    files = {"model": mpath, "update": upath}
    variants = []
    if fp16:
        for key, (suffix, convert, transform, label) in VARIANTS.items():
            if key == "model_int8" and not int8:
                continue
            vpath = out / ("model" + suffix)
            try:
                convert(mpath, vpath)
            except ImportError:
                raise ExportError("the reduced-precision variants need the onnx package: "
                                  "sudo apt-get install -y python3-onnx (or pass --no-fp16)")
            files[key] = vpath
            variants.append((vpath, transform))
            print(f"exported {vpath.name} ({vpath.stat().st_size / 1e6:.2f} MB, {label}, float32 compute)")
    results = []
    if check:
        results = parity(model, mpath, upath, extra_models=variants)
        report_parity(results, tolerance)
    else:
        print("WARNING: parity check skipped (--no-parity)")
    samp = sampling or {"sampler": "ddim", "steps": 25, "guidance": 1.0, "clip_x0": True}
    write_meta(out, ck, model, name, files, samp)
    return results


def requantize(model_json: Path, tolerance: float = 1e-4) -> List[Dict]:
    """Rewrite an exported model's files with the current exporter, without the training checkpoint:
    model.onnx with the current graph rewrites (`fuse.py`), update.onnx as the exporter writes it now,
    then the reduced-precision files model.json lists (fp16, int8) from it with the current quantizer. The new files are parity-checked against
    PyTorch (the network rebuilt from the old model.onnx) before they replace the old ones, and
    model.json's hashes and sizes are updated last, so a failure leaves the model as it was."""
    from .teacher import TeacherError, load_teacher

    try:
        model = load_teacher(model_json).model
    except TeacherError as e:
        raise ExportError(str(e)) from None
    meta = json.loads(model_json.read_text())
    out = model_json.parent
    mpath, upath = out / meta["files"]["model"]["path"], out / meta["files"]["update"]["path"]
    todo = [(k, v) for k, v in VARIANTS.items() if k in meta["files"]]
    with tempfile.TemporaryDirectory(dir=out) as d:
        fused_path = Path(d) / mpath.name
        fused = fuse_file(mpath, fused_path)
        update_path = Path(d) / upath.name
        export_update(model.cfg, update_path)
        fresh = [("model", fused_path, None), ("update", update_path, None)]
        for key, (_, convert, transform, _) in todo:
            tmp = Path(d) / meta["files"][key]["path"]
            convert(fused_path, tmp)
            fresh.append((key, tmp, transform))
        results = parity(model, fused_path, update_path, extra_models=[(t, f) for _, t, f in fresh[2:]])
        report_parity(results, tolerance, failure_note=f"; {model_json} is unchanged")
        print(f"model.onnx: {fused['group_norms']} group norms and {fused['projections']} projections fused")
        for key, tmp, _ in fresh:
            dst = out / meta["files"][key]["path"]
            tmp.replace(dst)
            meta["files"][key].update({"sha256": sha256_file(dst), "bytes": dst.stat().st_size})
            print(f"rewrote {dst} ({dst.stat().st_size / 1e6:.2f} MB)")
    tmp_json = model_json.with_name(model_json.name + ".tmp")
    tmp_json.write_text(json.dumps(meta, indent=2) + "\n")
    tmp_json.replace(model_json)
    return results


def default_out(run: Path) -> Path:
    """Where a run exports without --out: export/ in its folder (never the shipped models/)."""
    run = Path(run)
    return (run if run.is_dir() else run.parent) / "export"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="npm run export --", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="run directory (or checkpoint.pt) from `npm run train`")
    p.add_argument("--requantize", metavar="MODEL_JSON",
                   help="instead of exporting a run: rewrite an exported model with the current exporter, model.onnx "
                        "with its graph rewrites and the fp16/int8 files model.json lists with its quantizer "
                        "(parity-checked; no checkpoint needed)")
    p.add_argument("--out", help="output folder (default: export/ in the run's folder; the shipped models/ is "
                                 "only written when named)")
    p.add_argument("--name", default=None, help="model name recorded in model.json (default: run folder name)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference allowed in parity (fp32)")
    p.add_argument("--guidance", type=float, default=1.0, help="default guidance scale recorded in model.json")
    p.add_argument("--steps", type=int, default=25, help="default DDIM steps recorded in model.json")
    p.add_argument("--eta", type=float, default=0.0,
                   help="default DDIM noise recorded in model.json (0: deterministic; 1: the DDPM posterior's noise "
                        "at every step, which the shipped models sample better with, see models/REPORT.md)")
    p.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime parity check (not recommended)")
    p.add_argument("--no-fp16", action="store_true", help="do not write model.fp16.onnx / model.int8.onnx (reduced-precision weights)")
    p.add_argument("--no-int8", action="store_true", help="do not write model.int8.onnx, so the runtime's weights 'auto' "
                                                          "downloads fp16: for a model whose evaluation shows int8 weights "
                                                          "cost quality (npm run evaluate -- --weights fp32,int8)")
    a = p.parse_args(argv)
    if bool(a.run) == bool(a.requantize):
        p.error("give --run (export a training run) or --requantize MODEL_JSON")
    if a.requantize:
        try:
            requantize(Path(a.requantize), tolerance=a.tolerance)
        except (ExportError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if not 0.0 <= a.eta <= 1.0:
        p.error(f"--eta must be within 0..1, got {a.eta}")
    run = Path(a.run)
    out = Path(a.out) if a.out else default_out(run)
    sampling = {"sampler": "ddim", "steps": a.steps, "guidance": a.guidance, "clip_x0": True}
    if a.eta:
        sampling["eta"] = a.eta
    try:
        export(run, out, a.name or (run if run.is_dir() else run.parent).name, check=not a.no_parity,
               tolerance=a.tolerance,
               sampling=sampling,
               fp16=not a.no_fp16, int8=not a.no_int8)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: --out {out}: {e.strerror or e} ({e.filename or out}); the model already there is unchanged",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
