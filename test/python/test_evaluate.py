"""Evaluation: one classifier scores several models side by side (run, checkpoint or model.json)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import is_png
from sdtrain import evaluate as ev
from sdtrain import export as ex


@pytest.fixture(scope="module")
def exported_json(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval-model") / "m"
    ex.export(tiny_run, out, "tiny-exported", check=False, fp16=False)
    return out / "model.json"


def test_run_and_exported_model_score_identically_with_one_classifier(tiny_run, tiny_data, exported_json, tmp_path):
    """The exported model.json is the same network as the run, so with the same seed it scores the same."""
    out = tmp_path / "eval"
    report = ev.evaluate(tiny_run, tiny_data, out, per_category=6, settings=["ddim5"], device=torch.device("cpu"),
                         epochs=1, also=[(exported_json, ["ddim5", "ddim5-g2", "ddim5@int8"])])
    names = [s["name"] for s in report["settings"]]
    assert names == ["ddim5", "tiny-exported:ddim5", "tiny-exported:ddim5-g2", "tiny-exported:ddim5@int8"]
    a, b, c, d = report["settings"]
    assert d["weights"] == "int8" and "weights" not in b
    assert b["model"] == "tiny-exported" and b["model_steps"] == 125 and "model" not in a
    for key in ("accuracy_generated", "frechet_generated_vs_train", "frechet_balanced", "nn_median_generated",
                "roughness"):
        assert a[key] == pytest.approx(b[key], abs=1e-5), key
    # Frechet distance per category: every category, finite, the same network scoring the same
    assert set(a["per_category_frechet"]) == set(a["per_category_accuracy"]) == set(report["real"]["per_category_frechet"])
    for name, fd in a["per_category_frechet"].items():
        assert math.isfinite(fd) and fd >= 0 and fd == pytest.approx(b["per_category_frechet"][name], abs=1e-4)
    # a category with fewer than two held-out sprites has no covariance: None, not an error
    # training sprites drawn at the evaluator's counts: the calibration figures of a perfect generator
    draw = report["real"]["train_draw"]
    assert draw["per_category"] == 6
    assert all(math.isfinite(draw[key]) and draw[key] >= 0 for key in ("frechet_balanced", "frechet_unweighted"))
    held = report["real"]["per_category_frechet"]
    assert all(v is None or (math.isfinite(v) and v >= 0) for v in held.values())
    assert c["guidance"] == 2.0 and c["n"] == 12
    saved = json.loads((out / "eval.json").read_text())
    assert [s["name"] for s in saved["settings"]] == names
    assert is_png(out / "samples-tiny-exported-ddim5-g2.png") and is_png(out / "nearest-tiny-exported-ddim5.png")


def test_balanced_frechet_measures_the_sprites_not_the_category_mix():
    """The evaluator draws equal counts per category; the training split does not. A set drawn from the
    reference itself at equal counts is far from it unweighted, and near it with each category weighted equally."""
    g = torch.Generator().manual_seed(0)
    # two categories of 8-d features with distinct means; the reference holds them 9:1
    ref_y = torch.cat([torch.zeros(900, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    ref = torch.randn(1000, 8, generator=g, dtype=torch.float64) + 4.0 * ref_y[:, None]
    pick = torch.cat([torch.arange(0, 900, 9), torch.arange(900, 1000)])   # 100 of each, from the reference
    f, y = ref[pick], ref_y[pick]
    unweighted, balanced = ev.frechet(f, ref), ev.frechet_balanced(f, y, ref, ref_y, 2)
    assert unweighted > 5.0 and balanced < 0.3, (unweighted, balanced)
    # each category carries the same mass, whatever its count
    w = ev.balanced_weights(ref_y, 2)
    assert float(w[ref_y == 0].sum()) == pytest.approx(0.5) and float(w[ref_y == 1].sum()) == pytest.approx(0.5)
    # equal weights are the plain figure; a shifted set is far under either
    assert ev.frechet(f, ref, torch.ones(len(f)), torch.ones(len(ref))) == pytest.approx(unweighted, rel=1e-9)
    assert ev.frechet_balanced(f + 2.0, y, ref, ref_y, 2) > 30.0


def test_also_needs_model_and_settings(tiny_run, capsys):
    assert ev.main(["--run", str(tiny_run), "--also", f"{tiny_run}=ddim5@int4"]) == 2
    assert "unknown weights 'int4'" in capsys.readouterr().err
    assert ev.main(["--run", str(tiny_run), "--also", "no-settings-here"]) == 2
    assert "give MODEL=SETTINGS" in capsys.readouterr().err


def _sprite(rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """A batch of one RGBA image in [-1, 1] from an RGB (3, H, W) and an alpha mask (H, W) of 0/1."""
    return torch.cat([rgb, alpha[None] * 2 - 1])[None]


def test_roughness_measures_colour_change_between_opaque_neighbours():
    flat = _sprite(torch.full((3, 4, 4), 0.5), torch.ones(4, 4))
    assert ev.roughness(flat) == pytest.approx(0.0, abs=1e-6)
    # a checkerboard of -1 and 1 in every channel: each neighbour pair differs by 2
    cb = (torch.arange(4)[:, None] + torch.arange(4)[None]) % 2 * 2.0 - 1
    assert ev.roughness(_sprite(cb.expand(3, 4, 4).clone(), torch.ones(4, 4))) == pytest.approx(2.0, abs=1e-5)
    # pairs with a transparent pixel do not count: an opaque flat block beside transparent noise is smooth
    alpha = torch.zeros(4, 4)
    alpha[:, :2] = 1
    rgb = torch.full((3, 4, 4), 0.25)
    rgb[:, :, 2:] = torch.rand(3, 4, 2)
    assert ev.roughness(_sprite(rgb, alpha)) == pytest.approx(0.0, abs=1e-6)
    # a speckled copy of a sprite is rougher than the sprite
    noisy = flat.clone()
    noisy[:, :3] += 0.3 * torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert ev.roughness(noisy) > 0.1


def test_settings_name_ddim_noise_and_guidance():
    assert ev.parse_setting("ddim25-g3-e1") == {"name": "ddim25-g3-e1", "sampler": "ddim", "steps": 25,
                                                "guidance": 3.0, "eta": 1.0}
    assert ev.parse_setting("ddim50")["eta"] == 0.0
    for bad in ("ddim25-e2", "ddpm-e1", "ddim25-x"):
        with pytest.raises(ValueError):
            ev.parse_setting(bad)


def test_a_native_size_model_is_scored_against_its_upscaled_dataset(tiny_run, tmp_path):
    """16px art trained at 16px and at 32px (--upscale 2) compares with one 32px classifier."""
    from conftest import TINY_SIZE, build, synthetic_two_category
    src = synthetic_two_category(tmp_path / "src")
    big = tmp_path / "big.npz"
    assert build(["--folder", str(src), "--size", str(2 * TINY_SIZE), "--upscale", "2", "--out", str(big)]) == 0
    report = ev.evaluate(tiny_run, big, tmp_path / "eval", per_category=4, settings=["ddim3"],
                         device=torch.device("cpu"), epochs=1)
    (s,) = report["settings"]
    assert s["upscaled"] == 2 and s["n"] == 8
    assert is_png(tmp_path / "eval" / "samples-ddim3.png")
    odd = tmp_path / "odd.npz"
    assert build(["--folder", str(src), "--size", "24", "--out", str(odd)]) == 0
    with pytest.raises(ValueError, match="not a whole multiple"):
        ev.evaluate(tiny_run, odd, tmp_path / "e2", per_category=2, settings=["ddim2"], device=torch.device("cpu"),
                    epochs=1)


def test_variation_settings_start_from_held_out_sprites_and_report_their_distance(tiny_run, tiny_data, tmp_path):
    """'-sS' makes SDEdit variations of held-out sprites: strength 0 returns them, more strength drifts further."""
    assert ev.parse_setting("ddim5-s0.4")["strength"] == 0.4
    with pytest.raises(ValueError):
        ev.parse_setting("ddim5-s1.5")
    report = ev.evaluate(tiny_run, tiny_data, tmp_path / "eval", per_category=4,
                         settings=["ddim5-s0", "ddim5-s0.6", "ddim5-s1"], device=torch.device("cpu"), epochs=1)
    d0, d6, d1 = (s["pixel_distance_to_source"] for s in report["settings"])
    assert d0 == pytest.approx(0.0, abs=1e-4)
    assert 0.0 < d6 < d1
    assert "pixel_distance_to_source" not in ev.evaluate(tiny_run, tiny_data, tmp_path / "e2", per_category=2,
                                                         settings=["ddim5"], device=torch.device("cpu"),
                                                         epochs=1)["settings"][0]


def test_copy_ratio_tells_a_copy_from_a_texture_among_textures():
    """A copy (flipped and slightly noisy) of one training sprite scores near 0; a plain texture that sits
    close to many textures of its colour, as full-square block textures do, scores near 1 although its plain
    nearest distance is the smallest; leave-one-out never matches a sprite with itself."""
    g = torch.Generator().manual_seed(0)
    shapes = torch.rand(20, 4, 8, 8, generator=g) * 2 - 1
    textures = 0.1 + 0.02 * torch.randn(20, 4, 8, 8, generator=g)
    ref = torch.cat([shapes, textures])
    copy = shapes[3:4].flip(3) + 0.04 * torch.randn(1, 4, 8, 8, generator=g)
    texture = 0.1 + 0.02 * torch.randn(1, 4, 8, 8, generator=g)
    cpu = torch.device("cpu")
    ratio, idx = ev.copy_ratio(torch.cat([copy, texture]), ref, cpu, k=10)
    assert int(idx[0]) == 3 and float(ratio[0]) < 0.15
    assert float(ratio[1]) > 0.8
    plain, _ = ev.nn_distance(torch.cat([copy, texture]), ref, cpu)
    assert plain[1] < plain[0]
    loo, loo_idx = ev.copy_ratio(ref, ref, cpu, k=10, exclude_self=True)
    assert bool((loo_idx != torch.arange(len(ref))).all()) and float(loo.min()) > 0.3
    # with the sprite itself left in, every sprite is its own copy
    same, _ = ev.copy_ratio(ref, ref, cpu, k=10)
    assert float(same.max()) < 0.02


def test_eval_reports_copies_with_their_threshold_and_grid(tiny_run, tiny_data, tmp_path):
    report = ev.evaluate(tiny_run, tiny_data, tmp_path, per_category=4, settings=["ddim3"],
                         device=torch.device("cpu"), epochs=1)
    real, s = report["real"], report["settings"][0]
    assert 0 < real["copy_ratio_threshold"] < 1 and real["copy_neighbours"] == ev.COPY_NEIGHBOURS
    assert 0 <= s["copies_share"] <= 1 and set(s["copies_per_category"]) == set(s["per_category_accuracy"])
    assert s["copies_share"] == pytest.approx(sum(s["copies_per_category"].values()) / len(s["copies_per_category"]))
    assert is_png(tmp_path / "copies-ddim3.png") == (s["copies_share"] > 0)


def test_opaque_categories_are_sampled_opaque_as_the_runtime_does(tiny_run, tiny_data, tmp_path, monkeypatch):
    """With 'squares' marked opaque the evaluator samples them with alpha known: no half-transparent raw
    pixel in that row, and the setting records the categories."""
    real = ev.load_for_eval

    def with_opaque(path):
        m = real(path)
        m["opaque"] = ["squares"]
        return m
    monkeypatch.setattr(ev, "load_for_eval", with_opaque)
    seen = []
    real_sample = ev.sample

    def spy(*a, **kw):
        x = real_sample(*a, **kw)
        seen.append((kw["opaque"].clone(), x))
        return x
    monkeypatch.setattr(ev, "sample", spy)
    report = ev.evaluate(tiny_run, tiny_data, tmp_path, per_category=3, settings=["ddim3"],
                         device=torch.device("cpu"), epochs=1)
    assert report["settings"][0]["opaque"] == ["squares"]
    (flags, x), = seen
    assert flags.tolist() == [False] * 3 + [True] * 3        # categories [discs, squares]
    assert bool((x[3:, 3] == 1).all()) and not bool((x[:3, 3] == 1).all())
