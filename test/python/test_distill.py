"""Guidance distillation and the pixel-unshuffle stem: the fast-model path of issue 6.

A student learns an exported teacher's guided prediction eps_u + g (eps_c - eps_u), so it samples
with one network row per sprite; patch=2 runs the U-Net at half resolution (about 4x fewer FLOPs).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import TINY_SIZE, load_ckpt, train_args
from sdtrain import export as ex
from sdtrain import train
from sdtrain.config import TrainConfig
from sdtrain.model import ContextUnet, ModelConfig, count_flops
from sdtrain.schedule import guided_eps
from sdtrain.teacher import TeacherError, load_teacher

STUDENT_STEPS = 100


@pytest.fixture(scope="module")
def teacher_json(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "models"
    ex.export(tiny_run, out, "tiny-teacher", check=False, fp16=False)
    return out / "model.json"


def test_teacher_rebuilt_from_onnx_equals_the_trained_weights(tiny_run, teacher_json):
    """Every parameter, the GroupNorm affines the exporter folds into constants included."""
    teacher = load_teacher(teacher_json)
    ema = load_ckpt(tiny_run / "checkpoint.pt")["ema"]
    got = teacher.model.state_dict()
    assert set(got) == set(ema)
    norm_keys = [k for k in ema if ".norm" in k or k.startswith("norm_out")]
    assert norm_keys, "the tiny model has GroupNorm layers"
    for k, v in ema.items():
        assert torch.equal(got[k], v), f"{k} differs after the ONNX round trip"
    assert teacher.categories == ["discs", "squares"]


def test_teacher_guided_eps_is_cfg_of_its_two_passes(teacher_json):
    teacher = load_teacher(teacher_json)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, TINY_SIZE, TINY_SIZE, generator=g)
    t = torch.tensor([5.0, 250.0, 499.0])
    ctx = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    with torch.no_grad():
        cond = teacher.model(x, t, ctx)
        unc = teacher.model(x, t, torch.zeros_like(ctx))
    got = teacher.guided_eps(x, t, ctx, 3.0)
    want = guided_eps(cond, unc, 3.0)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got[2], unc[2], atol=1e-5), "a null-context row gets the unconditional prediction"
    assert not torch.allclose(got[0], cond[0], atol=1e-4), "guidance 3 changes a conditional row"
    assert torch.allclose(teacher.guided_eps(x, t, ctx, 1.0), cond, atol=1e-6)


def test_teacher_errors_name_the_problem(teacher_json, tmp_path):
    with pytest.raises(TeacherError, match="no teacher at"):
        load_teacher(tmp_path / "nope.json")
    bad = tmp_path / "m"
    bad.mkdir()
    for f in teacher_json.parent.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    onnx_file = bad / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(TeacherError, match="does not match the sha256"):
        load_teacher(bad / "model.json")
    (bad / "model.json").write_text("{not json")
    with pytest.raises(TeacherError, match="not valid JSON"):
        load_teacher(bad / "model.json")


def test_patch_stem_keeps_shapes_and_cuts_flops():
    base = ContextUnet(ModelConfig(size=32, widths=(32, 64, 128)))
    fast = ContextUnet(ModelConfig(size=32, widths=(32, 64, 128), patch=2))
    x = torch.randn(2, 4, 32, 32)
    with torch.no_grad():
        for p in fast.parameters():
            p.normal_(0, 0.05)
        y = fast(x, torch.tensor([1.0, 400.0]), torch.zeros(2, 11))
    assert y.shape == x.shape
    ratio = count_flops(base) / count_flops(fast)
    assert 3.5 < ratio < 4.5, f"patch 2 should cost about a quarter of the FLOPs, got 1/{ratio:.2f}"
    # Each output pixel depends on its own 2x2 cell's inputs through the stem (not a broken reshape):
    # moving one input pixel changes outputs around it, and the layout round-trips.
    assert torch.equal(torch.nn.functional.pixel_shuffle(torch.nn.functional.pixel_unshuffle(x, 2), 2), x)
    with pytest.raises(ValueError, match="patch 3"):
        ModelConfig(size=32, patch=3).validate()
    with pytest.raises(ValueError, match="divisible by 16"):
        ModelConfig(size=24, widths=(32, 64, 128, 256), patch=2).validate()


@pytest.fixture(scope="module")
def student_run(tiny_data, teacher_json, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student") / "run"
    rc = train.main(train_args(tiny_data, out, STUDENT_STEPS, "--patch", "2", "--teacher", str(teacher_json),
                               "--teacher-guidance", "2.5", "--lr", "3e-3", "--warmup", "5"))
    assert rc == 0
    return out


def test_student_learns_the_teachers_guided_prediction(student_run, teacher_json):
    ck = load_ckpt(student_run / "checkpoint.pt")
    cfg = ck["config"]
    assert cfg["teacher"] == str(teacher_json) and cfg["teacher_guidance"] == 2.5
    assert cfg["model"]["patch"] == 2
    losses = ck["history"]["loss"]
    assert losses[-1] < 0.75 * losses[0], f"distillation loss did not fall: {losses}"

    # What the trainer regresses on is the teacher's guided prediction, not the sampled noise.
    cfg_obj = TrainConfig.load(student_run / "config.json")
    cfg_obj.out = str(student_run)
    trainer = train.Trainer(cfg_obj, resume=True)
    x0, ctx, t, noise = trainer.batch()
    ab = trainer.alpha_bar[t].view(-1, 1, 1, 1)
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    want = load_teacher(teacher_json).guided_eps(xt, t.float(), ctx, 2.5)
    got = trainer.target(xt, t, ctx, noise)
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(got, noise, atol=1e-2)


def test_student_export_marks_it_distilled(student_run, teacher_json, tmp_path):
    out = tmp_path / "fast"
    ex.export(student_run, out, "tiny-fast", check=True, fp16=False)
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["distilled"] == {"teacher": str(teacher_json), "guidance": 2.5}
    assert meta["sampling"]["guidance"] == 1.0
    assert meta["training"]["model"]["patch"] == 2


def test_distilling_from_a_teacher_of_other_categories_fails(tiny_data, teacher_json, tmp_path, capsys):
    meta = json.loads(teacher_json.read_text())
    meta["categories"] = ["squares", "discs"]
    other = teacher_json.parent / "other.json"
    other.write_text(json.dumps(meta))
    rc = train.main(train_args(tiny_data, tmp_path / "r", 2, "--teacher", str(other)))
    assert rc == 2
    assert "distil from a model trained on the same dataset" in capsys.readouterr().err


def test_input_skip_starts_as_a_no_op_costs_little_and_learns():
    cfg = ModelConfig(size=32, widths=(32, 64, 128), patch=2)
    base = ContextUnet(cfg)
    with torch.no_grad():
        for p in base.parameters():
            p.normal_(0, 0.05)
    skip = ContextUnet(ModelConfig.from_dict({**cfg.to_dict(), "input_skip": True}))
    result = skip.load_state_dict(base.state_dict(), strict=False)
    assert sorted(result.missing_keys) == ["skip_in.bias", "skip_in.weight", "skip_t.bias", "skip_t.weight"]
    x, t, ctx = torch.randn(2, 4, 32, 32), torch.tensor([3.0, 400.0]), torch.eye(11)[:2]
    with torch.no_grad():
        assert torch.equal(skip(x, t, ctx), base(x, t, ctx)), "a zero-initialised skip must change nothing"
    assert count_flops(skip) / count_flops(base) < 1.02
    # It is a gradient path: one step towards a target moves its weights off zero.
    opt = torch.optim.SGD(skip.parameters(), lr=0.1)
    torch.nn.functional.mse_loss(skip(x, t, ctx), torch.randn_like(x)).backward()
    opt.step()
    assert skip.skip_in.weight.abs().sum() > 0


def test_refine_head_starts_as_a_no_op_costs_little_and_learns():
    cfg = ModelConfig(size=32, widths=(32, 64, 128), patch=2, input_skip=True)
    base = ContextUnet(cfg)
    with torch.no_grad():
        for p in base.parameters():
            p.normal_(0, 0.05)
    head = ContextUnet(ModelConfig.from_dict({**cfg.to_dict(), "refine": 32}))
    result = head.load_state_dict(base.state_dict(), strict=False)
    assert sorted(result.missing_keys) == ["refine_in.bias", "refine_in.weight", "refine_out.bias",
                                           "refine_out.weight", "refine_t.bias", "refine_t.weight"]
    # its input: the shuffled output (4), the input (4) and the shuffled last features (32 / 2^2)
    assert head.refine_in.in_channels == 16
    x, t, ctx = torch.randn(2, 4, 32, 32), torch.tensor([3.0, 400.0]), torch.eye(11)[:2]
    with torch.no_grad():
        assert torch.equal(head(x, t, ctx), base(x, t, ctx)), "a zero-initialised head must change nothing"
    assert 1.05 < count_flops(head) / count_flops(base) < 1.15
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    torch.nn.functional.mse_loss(head(x, t, ctx), torch.randn_like(x)).backward()
    opt.step()
    assert head.refine_out.weight.abs().sum() > 0
    with torch.no_grad():
        assert not torch.equal(head(x, t, ctx), base(x, t, ctx))
    with pytest.raises(ValueError, match="refine needs widths"):
        ModelConfig(size=32, widths=(24, 48), groups=8, patch=4, refine=8).validate()


def test_init_from_fine_tunes_another_runs_ema_weights(tiny_run, tiny_data, tmp_path, capsys):
    src = tiny_run / "checkpoint.pt"
    ema = load_ckpt(src)["ema"]
    args = ("--input-skip", "--refine", "8", "--init-from", str(src), "--lr", "1e-3", "--warmup", "2")
    # At initialisation the new run's network is the source's EMA network (the skip starts at zero).
    cfg = train.config_from_args(train.make_parser().parse_args(train_args(tiny_data, tmp_path / "a", 4, *args)))
    trainer = train.Trainer(cfg)
    source = ContextUnet(ModelConfig.from_dict(load_ckpt(src)["config"]["model"]))
    source.load_state_dict(ema)
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(3, 4, TINY_SIZE, TINY_SIZE, generator=g), torch.tensor([2.0, 100.0, 480.0])
    ctx = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    with torch.no_grad():
        assert torch.equal(trainer.model(x, t, ctx), source(x, t, ctx))
        assert torch.equal(trainer.ema(x, t, ctx), source(x, t, ctx))
    assert trainer.step == 0
    assert ("new parameters: refine_in.bias, refine_in.weight, refine_out.bias, refine_out.weight, refine_t.bias, "
            "refine_t.weight, skip_in.bias, skip_in.weight, skip_t.bias, skip_t.weight") in capsys.readouterr().out

    # A short fine-tune runs, saves its settings, and exports (ONNX checked against PyTorch) to a model
    # whose weights, the skip's included, round-trip through the teacher loader.
    out = tmp_path / "b"
    assert train.main(train_args(tiny_data, out, 4, *args)) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["init_from"] == str(src) and saved["model"]["input_skip"] is True and saved["model"]["refine"] == 8
    models = tmp_path / "models"
    ex.export(out, models, "tiny-skip", check=True, fp16=False)
    got = load_teacher(models / "model.json").model.state_dict()
    want = load_ckpt(out / "checkpoint.pt")["ema"]
    assert set(got) == set(want)
    assert all(torch.equal(got[k], v) for k, v in want.items())
    assert want["skip_in.weight"].abs().sum() > 0, "four steps moved the skip off zero"
    assert want["refine_out.weight"].abs().sum() > 0, "and the refinement head"

    # A network of another shape, or no checkpoint, is a clear error.
    assert train.main(train_args(tiny_data, tmp_path / "c", 2, *args, "--emb-dim", "16")) == 2
    assert "does not fit this one" in capsys.readouterr().err
    assert train.main(train_args(tiny_data, tmp_path / "d", 2, "--init-from", str(tmp_path / "none.pt"))) == 2
    assert "no such file" in capsys.readouterr().err


def test_up_conv_first_keeps_the_parameters_moves_the_convolutions_and_costs_less():
    cfg = ModelConfig(size=32, widths=(32, 64, 128), patch=2, input_skip=True, refine=32)
    base = ContextUnet(cfg)
    with torch.no_grad():
        for p in base.parameters():
            p.normal_(0, 0.05)
    fast = ContextUnet(ModelConfig.from_dict({**cfg.to_dict(), "up_conv_first": True}))
    fast.load_state_dict(base.state_dict())  # strict: the same parameters, the same shapes
    x, t, ctx = torch.randn(2, 4, 32, 32), torch.tensor([3.0, 400.0]), torch.eye(11)[:2]

    def upsample_outputs(model):
        shapes = []
        hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[2:]))) for m in model.upsamples]
        with torch.no_grad():
            out = model(x, t, ctx)
        for h in hooks:
            h.remove()
        return out, shapes

    a, base_shapes = upsample_outputs(base)
    b, fast_shapes = upsample_outputs(fast)
    assert base_shapes == [(8, 8), (16, 16)], "upsample, then convolve"
    assert fast_shapes == [(4, 4), (8, 8)], "convolve at the lower resolution, then upsample"
    assert a.shape == b.shape and not torch.allclose(a, b)
    # the two up-path convolutions (9.4 MFLOP each of 118) now run on a quarter of the positions
    saved = count_flops(base) - count_flops(fast)
    assert saved == 3 * sum(2 * 9 * m.in_channels * m.out_channels * s[0] * s[1] // 4
                            for m, s in zip(base.upsamples, base_shapes))
    assert 0.85 < count_flops(fast) / count_flops(base) < 0.9


def test_up_conv_first_fine_tunes_from_a_trained_run_and_exports(tiny_run, tiny_data, tmp_path):
    out = tmp_path / "u"
    args = ("--up-conv-first", "--init-from", str(tiny_run / "checkpoint.pt"), "--warmup", "2")
    assert train.main(train_args(tiny_data, out, 3, *args)) == 0
    assert json.loads((out / "config.json").read_text())["model"]["up_conv_first"] is True
    models = tmp_path / "models"
    ex.export(out, models, "tiny-upfirst", check=True, fp16=False)  # ONNX checked against PyTorch
    teacher = load_teacher(models / "model.json")
    assert teacher.model.cfg.up_conv_first is True
    want = load_ckpt(out / "checkpoint.pt")["ema"]
    assert all(torch.equal(teacher.model.state_dict()[k], v) for k, v in want.items())
    # the flag is part of the network: a resumed run cannot change it
    assert train.main(train_args(tiny_data, out, 4, "--resume", "--up-conv-first")) == 2
