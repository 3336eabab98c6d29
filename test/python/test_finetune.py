"""Fine-tuning from a trained network onto any category set (training/sdtrain/finetune.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import build, unique_sprites, write_folder_dataset
from sdtrain import export as ex
from sdtrain import train
from sdtrain.finetune import CONTEXT_WEIGHT, InitSourceError, load_init_source, resize_context
from sdtrain.teacher import load_teacher

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY_MODEL = FIXTURES / "tiny" / "model.json"


def weights(n_context: int, emb: int = 6):
    g = torch.Generator().manual_seed(3)
    return {CONTEXT_WEIGHT: torch.randn(emb, n_context, generator=g), "other.weight": torch.randn(2, 2, generator=g)}


def test_resize_keeps_same_named_columns_and_initialises_new_ones():
    w = weights(3)
    src = ["monster", "potion", "wall"]
    out, kept, new = resize_context(w, src, ["wall", "blocks", "monster", "tools"])
    assert kept == ["wall", "monster"] and new == ["blocks", "tools"]
    got = out[CONTEXT_WEIGHT]
    assert got.shape == (6, 4)
    assert torch.equal(got[:, 0], w[CONTEXT_WEIGHT][:, 2]) and torch.equal(got[:, 2], w[CONTEXT_WEIGHT][:, 0])
    mean = w[CONTEXT_WEIGHT].mean(dim=1)
    assert torch.allclose(got[:, 1], mean) and torch.allclose(got[:, 3], mean)
    assert out["other.weight"] is w["other.weight"], "only the context input changes"
    assert w[CONTEXT_WEIGHT].shape == (6, 3), "the source's weights are left as they were"

    zero, _, _ = resize_context(w, src, ["blocks", "potion"], init="zero")
    assert torch.equal(zero[CONTEXT_WEIGHT][:, 0], torch.zeros(6))
    assert torch.equal(zero[CONTEXT_WEIGHT][:, 1], w[CONTEXT_WEIGHT][:, 1])
    rnd, _, _ = resize_context(w, src, ["a", "b"], init="random", generator=torch.Generator().manual_seed(0))
    col = rnd[CONTEXT_WEIGHT]
    assert col.abs().max() <= 1 / 2 ** 0.5 and col.std() > 0 and not torch.equal(col[:, 0], col[:, 1])
    with pytest.raises(ValueError, match="unknown new-category init"):
        resize_context(w, src, ["a"], init="copy")
    # sub-categories of a source category (monster/0, monster/1) start from their parent's column
    sub, kept, new = resize_context(w, src, ["monster/0", "monster/1", "potion", "ghost/0"])
    assert kept == ["potion"] and new == ["monster/0", "monster/1", "ghost/0"]
    assert torch.equal(sub[CONTEXT_WEIGHT][:, 0], w[CONTEXT_WEIGHT][:, 0])
    assert torch.equal(sub[CONTEXT_WEIGHT][:, 1], w[CONTEXT_WEIGHT][:, 0])
    assert torch.allclose(sub[CONTEXT_WEIGHT][:, 3], mean), "no parent named ghost: the mean"


def three_category_data(tmp_path: Path, size: int = 32) -> Path:
    """blocks, monster (a category the tiny model also has) and tools, 8 sprites each, at `size` px."""
    src = write_folder_dataset(tmp_path / "sprites", {
        "blocks": unique_sprites(8, size=size, seed=1),
        "monster": unique_sprites(8, size=size, seed=2, opaque_box=(2, 2, size - 2, size // 2)),
        "tools": unique_sprites(8, size=size, seed=3, opaque_box=(size // 2, 1, size - 1, size - 1)),
    })
    out = tmp_path / f"own-{size}.npz"
    assert build(["--folder", str(src), "--size", str(size), "--out", str(out)]) == 0
    return out


def test_init_from_an_exported_model_json_with_other_categories(tmp_path, capsys):
    data = three_category_data(tmp_path)
    run = tmp_path / "run"
    argv = ["--data", str(data), "--out", str(run), "--init-from", str(TINY_MODEL), "--steps", "3", "--batch", "4",
            "--device", "cpu", "--sample-every", "0"]
    cfg = train.config_from_args(train.make_parser().parse_args(argv))
    # The source's network shape and the fine-tune recipe, without a --widths or --lr on the command line.
    assert cfg.model.widths == (8, 16) and cfg.model.emb_dim == 32 and cfg.model.size == 32
    assert cfg.lr == train.FINETUNE_DEFAULTS["lr"] and cfg.warmup == train.FINETUNE_DEFAULTS["warmup"]
    trainer = train.Trainer(cfg)
    teacher = load_teacher(TINY_MODEL)
    src = teacher.model.state_dict()[CONTEXT_WEIGHT]
    got = trainer.model.state_dict()[CONTEXT_WEIGHT]
    assert got.shape == (src.shape[0], 3)
    assert torch.equal(got[:, 1], src[:, teacher.categories.index("monster")]), "monster keeps its column"
    assert torch.allclose(got[:, 0], src.mean(dim=1)) and torch.allclose(got[:, 2], src.mean(dim=1))
    # Everything but the context input is the source network.
    for k, v in teacher.model.state_dict().items():
        if k != CONTEXT_WEIGHT:
            assert torch.equal(trainer.ema.state_dict()[k], v), k
    out = capsys.readouterr().out
    assert "categories kept: monster; new (mean of the source's): blocks, tools" in out

    # It trains, and exports (into the run folder by default) to a model of the new categories.
    assert train.main([*argv[:3], str(tmp_path / "run2"), *argv[4:]]) == 0
    model_dir = ex.default_out(tmp_path / "run2")
    ex.export(tmp_path / "run2", model_dir, "own", check=True, fp16=False)
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["categories"] == ["blocks", "monster", "tools"]
    assert meta["training"]["init_from"] == {"source": str(TINY_MODEL), "freeze": train.FINETUNE_DEFAULTS["freeze"]}
    assert model_dir.parent == tmp_path / "run2"


def test_a_bad_init_from_is_one_line_and_leaves_no_run_folder(tmp_path, capsys):
    data = three_category_data(tmp_path)
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    bad_json = tmp_path / "other.json"
    bad_json.write_text('{"format": "something-else"}')
    capsys.readouterr()
    for source, said in [(junk, "neither an exported model.json nor a readable training checkpoint"),
                         (bad_json, "is not a spritediffusion model.json"),
                         (tmp_path / "missing.json", "no such file")]:
        run = tmp_path / f"run-{source.name}"
        rc = train.main(["--data", str(data), "--out", str(run), "--init-from", str(source), "--steps", "2",
                         "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and said in err, err
        assert len(err.splitlines()) == 1, err
        assert not run.exists(), "a run that did not start leaves no folder"
    with pytest.raises(InitSourceError, match="no such file"):
        load_init_source(tmp_path / "nothing.pt")

    # A model of another image size: the dataset is 16px, the model makes 32px sprites.
    small = three_category_data(tmp_path / "small", size=16)
    capsys.readouterr()
    run = tmp_path / "run-small"
    rc = train.main(["--data", str(small), "--out", str(run), "--init-from", str(TINY_MODEL), "--steps", "2",
                     "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "makes 32px sprites but the dataset's are 16px" in err and "--upscale 2" in err, err
    assert len(err.splitlines()) == 1 and not run.exists()
    rc = train.main(["--data", str(data), "--out", str(run), "--init-from", str(TINY_MODEL), "--size", "16"])
    assert rc == 2 and "makes 32px sprites, not --size 16" in capsys.readouterr().err
    assert not run.exists()


def test_freeze_encoder_trains_only_the_rest_and_resumes_frozen(tmp_path, capsys):
    data = three_category_data(tmp_path)
    run = tmp_path / "frozen"
    argv = ["--data", str(data), "--out", str(run), "--init-from", str(TINY_MODEL), "--steps", "3", "--batch", "4",
            "--device", "cpu", "--sample-every", "0", "--freeze", "encoder"]
    assert train.main(argv) == 0
    assert "M train, --freeze encoder)" in capsys.readouterr().out
    before = load_teacher(TINY_MODEL).model.state_dict()
    after = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    frozen = [k for k in after if k.startswith(("conv_in.", "down_blocks.", "downsamples.", "mid."))]
    trained = [k for k in after if k.startswith(("up_blocks.", "conv_out."))]
    assert frozen and trained
    for k in frozen:
        assert torch.equal(after[k], before[k]), f"{k} changed although frozen"
    assert any(not torch.equal(after[k], before[k]) for k in trained), "the up path trained"
    assert json.loads((run / "config.json").read_text())["freeze"] == "encoder"
    # A resumed run keeps the setting (and refuses to change it).
    assert train.main(["--data", str(data), "--out", str(run), "--resume", "--steps", "4", "--device", "cpu",
                       "--sample-every", "0"]) == 0
    again = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(again[k], before[k]) for k in frozen)
    with pytest.raises(train.TrainError, match="--freeze"):
        train.config_from_args(train.make_parser().parse_args(
            ["--data", str(data), "--out", str(run), "--resume", "--freeze", "none"]))
    # Freezing layers of a network nobody trained is refused, before anything is written.
    with pytest.raises(train.TrainError, match="needs --init-from"):
        train.config_from_args(train.make_parser().parse_args(
            ["--data", str(data), "--out", str(tmp_path / "scratch"), "--freeze", "encoder"]))
    assert not (tmp_path / "scratch").exists()
