"""`--preset dcss` on a miniature rltiles tree that mimics the real folder layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import build, rect_sprite, save_png, unique_sprites
from sdtrain.dataset import DCSS_MAPPING, load_dataset

# The documented category order (the model's context index order) and, per category, the
# folders the test puts sprites in (some not the first of the mapping, some nested deeper).
EXPECTED = {
    "character": ["player/base", "mon/unique/deep"],
    "monster": ["mon/animals", "mon/undead"],
    "weapon": ["item/weapon", "item/staff"],
    "armour": ["item/armour"],
    "potion": ["item/potion"],
    "food": ["item/food"],
    "treasure": ["item/ring", "item/gold"],
    "scroll": ["item/scroll", "item/book"],
    "spell": ["gui/spells", "gui/invocations/sub"],
    "wall": ["dngn/wall"],
    "floor": ["dngn/floor"],
}


def _tree(root: Path):
    """Returns {fitted image bytes: category} for every sprite that must survive."""
    for folders in DCSS_MAPPING.values():  # the preset expects every mapped folder to exist
        for f in folders:
            (root / f).mkdir(parents=True, exist_ok=True)
    expect = {}
    for k, (cat, folders) in enumerate(EXPECTED.items()):
        sprites = unique_sprites(2 * len(folders), size=32, seed=k + 1, opaque_box=(6, 6, 26, 26))
        for i, img in enumerate(sprites):
            folder = folders[i % len(folders)]
            save_png(root / folder / f"{cat}_{i}.png", img)
            expect[img.tobytes()] = cat
    # a 64x64 tile is filtered (the preset keeps exact 32x32 only)
    save_png(root / "mon/animals/big_64.png", rect_sprite(64, (5, 200, 5), (0, 0, 64, 64)))
    # fewer than 60 opaque pixels: filtered (7x7 = 49)
    save_png(root / "item/potion/sparse.png", rect_sprite(32, (200, 5, 5), (10, 10, 17, 17)))
    # the same tile in monster (mon/undead) and potion (item/potion): monster comes first
    dup = unique_sprites(1, size=32, seed=99)[0]
    save_png(root / "mon/undead/zombie_dup.png", dup)
    save_png(root / "item/potion/zz_dup.png", dup)
    expect[dup.tobytes()] = "monster"
    return expect


def test_dcss_preset_mapping(tmp_path, capsys):
    root = tmp_path / "rltiles"
    expect = _tree(root)
    out = tmp_path / "dcss.npz"
    rc = build(["--preset", "dcss", "--source", str(root), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    d = load_dataset(out)
    m = d["manifest"]
    assert d["categories"] == list(EXPECTED) == list(DCSS_MAPPING)
    assert d["images"].shape == (len(expect), 32, 32, 4)
    got = {img.tobytes(): d["categories"][lab] for img, lab in zip(d["images"], d["labels"])}
    assert got == expect, "every sprite lands in its mapped category; the duplicate in the earlier one"
    assert m["filtered_out"] == 2
    assert m["duplicates_dropped"] == 1
    assert m["source"]["preset"] == "dcss"
    totals = {k: v["train"] + v["eval"] for k, v in m["counts"].items()}
    want = {cat: 2 * len(f) for cat, f in EXPECTED.items()}
    want["monster"] += 1
    assert totals == want
    assert all(v["eval"] >= 1 for v in m["counts"].values())


def test_dcss_preset_missing_source(tmp_path, capsys):
    rc = build(["--preset", "dcss", "--source", str(tmp_path / "absent"), "--out", str(tmp_path / "x.npz")])
    assert rc == 2
    assert "--source" in capsys.readouterr().err


def test_dcss_preset_rejects_folder_mix(tmp_path, capsys):
    rc = build(["--preset", "dcss", "--folder", str(tmp_path), "--out", str(tmp_path / "x.npz")])
    assert rc == 2
    assert "cannot be combined" in capsys.readouterr().err
