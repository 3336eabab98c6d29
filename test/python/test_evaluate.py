"""Evaluation: one classifier scores several models side by side (run, checkpoint or model.json)."""
from __future__ import annotations

import json
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
                         epochs=1, also=[(exported_json, ["ddim5", "ddim5-g2"])])
    names = [s["name"] for s in report["settings"]]
    assert names == ["ddim5", "tiny-exported:ddim5", "tiny-exported:ddim5-g2"]
    a, b, c = report["settings"]
    assert b["model"] == "tiny-exported" and b["model_steps"] == 125 and "model" not in a
    for key in ("accuracy_generated", "frechet_generated_vs_train", "nn_median_generated"):
        assert a[key] == pytest.approx(b[key], abs=1e-5), key
    assert c["guidance"] == 2.0 and c["n"] == 12
    saved = json.loads((out / "eval.json").read_text())
    assert [s["name"] for s in saved["settings"]] == names
    assert is_png(out / "samples-tiny-exported-ddim5-g2.png") and is_png(out / "nearest-tiny-exported-ddim5.png")


def test_also_needs_model_and_settings(tiny_run, capsys):
    assert ev.main(["--run", str(tiny_run), "--also", "no-settings-here"]) == 2
    assert "give MODEL=SETTINGS" in capsys.readouterr().err
