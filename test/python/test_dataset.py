"""Dataset builder (sdtrain.dataset / sdtrain.images) on small fixtures drawn by the tests."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import blank, build, rect_sprite, save_png, unique_sprites, write_folder_dataset
from sdtrain.dataset import DatasetError, load_dataset, stratified_split
from sdtrain.images import fit_to_size, load_rgba


def _build_ok(argv, capsys=None):
    rc = build(argv)
    if rc != 0 and capsys is not None:
        pytest.fail(f"dataset build failed ({rc}): {capsys.readouterr().err}")
    assert rc == 0
    return rc


# ---- (a) palette PNG transparency --------------------------------------------------------

def _palette_png(path: Path, trns) -> np.ndarray:
    """8x8 palette image: index 0 background (magenta), 1 a red bar, 2 a green dot. Returns index map."""
    idx = np.zeros((8, 8), dtype=np.uint8)
    idx[2:6, 1:7] = 1
    idx[4, 4] = 2
    im = Image.fromarray(idx, "P")
    im.putpalette([255, 0, 255, 200, 10, 10, 10, 200, 10] + [0] * (256 - 3) * 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, transparency=trns)
    with Image.open(path) as check:  # the fixture really is a palette PNG with a tRNS chunk
        assert check.mode == "P" and "transparency" in check.info
    return idx


@pytest.mark.parametrize("trns", [0, bytes([0, 255, 255])], ids=["index", "alpha-table"])
def test_palette_png_keeps_transparency(tmp_path, capsys, trns):
    idx = _palette_png(tmp_path / "src" / "pal" / "sprite.png", trns)
    out = tmp_path / "d.npz"
    _build_ok(["--folder", str(tmp_path / "src"), "--size", "8", "--holdout", "0", "--out", str(out)], capsys)
    d = load_dataset(out)
    assert d["images"].shape == (1, 8, 8, 4)
    img = d["images"][0]
    transparent = idx == 0
    assert (img[transparent, 3] == 0).all(), "palette index 0 must become alpha 0"
    assert (img[~transparent, 3] == 255).all(), "other palette entries must stay opaque"
    assert (img[transparent, :3] == 0).all(), "RGB of fully transparent pixels is zeroed (no magenta leaks)"
    assert tuple(img[2, 1, :3]) == (200, 10, 10) and tuple(img[4, 4, :3]) == (10, 200, 10)


# ---- (b) corrupt files are skipped -------------------------------------------------------

def test_corrupt_png_is_skipped_and_listed(tmp_path, capsys):
    src = write_folder_dataset(tmp_path / "src", {"good": unique_sprites(3, size=16)})
    garbage = src / "good" / "zz_garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"definitely not a png" * 10)
    truncated = src / "good" / "zz_truncated.png"
    truncated.write_bytes((src / "good" / "000.png").read_bytes()[:40])
    out = tmp_path / "d.npz"
    _build_ok(["--folder", str(src), "--size", "16", "--out", str(out)], capsys)
    d = load_dataset(out)
    m = d["manifest"]
    assert len(d["labels"]) == 3 and m["total"] == 3
    skipped = {Path(s["file"]).name: s["reason"] for s in m["skipped"]}
    assert set(skipped) == {"zz_garbage.png", "zz_truncated.png"}
    for name, reason in skipped.items():
        assert name in reason and "cannot read image" in reason
    assert "skipped 2 unreadable" in capsys.readouterr().out


def test_dangling_symlink_is_listed_as_skipped(tmp_path, capsys):
    src = write_folder_dataset(tmp_path / "src", {"good": unique_sprites(3, size=16)})
    (src / "good" / "zz_gone.png").symlink_to(tmp_path / "nowhere.png")
    out = tmp_path / "d.npz"
    _build_ok(["--folder", str(src), "--size", "16", "--out", str(out)], capsys)
    m = load_dataset(out)["manifest"]
    assert [Path(s["file"]).name for s in m["skipped"]] == ["zz_gone.png"]


def test_16bit_grey_png_keeps_its_shades(tmp_path):
    """PIL's mode I (16-bit grey) clips at 255 when converted; the loader scales it to 8 bits."""
    grey16 = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1024).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(grey16).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    rgba = load_rgba(path)
    assert rgba.shape == (8, 8, 4)
    np.testing.assert_array_equal(rgba[..., 0], (grey16 >> 8).astype(np.uint8))
    assert (rgba[..., 3] == 255).all()


# ---- (c) sprite sheets -------------------------------------------------------------------

GRID_LINE = (255, 0, 255, 255)  # opaque magenta margin/spacing, as many sheets have


def _sheet(path: Path, cell=8, margin=2, spacing=1, rows=2, cols=3, empty=((0, 1),)):
    w = 2 * margin + cols * cell + (cols - 1) * spacing
    h = 2 * margin + rows * cell + (rows - 1) * spacing
    sheet = np.zeros((h, w, 4), dtype=np.uint8)
    sheet[...] = GRID_LINE
    cells = {}
    for r in range(rows):
        for c in range(cols):
            y, x = margin + r * (cell + spacing), margin + c * (cell + spacing)
            if (r, c) in empty:
                content = blank(cell)
            else:
                content = blank(cell)
                content[1:cell - 1, 2:cell - 1] = (30 + 60 * r, 20 + 70 * c, 90, 255)
                content[0, 0] = (1, 2 + r, 3 + c, 255)  # corner pixel pins the exact cell origin
                cells[(r, c)] = content
            sheet[y:y + cell, x:x + cell] = content
    save_png(path, sheet)
    return sheet, cells


def test_sheet_slicing_with_margin_and_spacing(tmp_path, capsys):
    sheet_path = tmp_path / "sheet.png"
    sheet, cells = _sheet(sheet_path)
    assert sheet.shape[:2] == (21, 30)
    out = tmp_path / "d.npz"
    _build_ok(["--sheet", f"{sheet_path},category=potion,cell=8x8,margin=2,spacing=1",
               "--size", "8", "--holdout", "0", "--out", str(out)], capsys)
    d = load_dataset(out)
    assert d["categories"] == ["potion"]
    expected = [cells[k] for k in sorted(cells)]  # row-major, empty (0,1) dropped
    assert len(d["images"]) == len(expected) == 5
    for got, want in zip(d["images"], expected):
        np.testing.assert_array_equal(got, want)
    # no grid-line pixel leaked into any cell
    assert not (d["images"][..., :3] == GRID_LINE[:3]).all(axis=-1).any()
    assert d["manifest"]["counts"] == {"potion": {"train": 5, "eval": 0}}


def test_sheet_grid_that_does_not_divide_fails_with_fix(tmp_path, capsys):
    sheet_path = tmp_path / "odd-sheet.png"
    _sheet(sheet_path)
    rc = build(["--sheet", f"{sheet_path},category=potion,cell=7x8,margin=2,spacing=1",
                "--out", str(tmp_path / "d.npz")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "odd-sheet.png" in err
    assert "does not divide" in err and "fix cell/margin/spacing" in err
    assert not (tmp_path / "d.npz").exists()


def test_sheet_unknown_option_is_named(tmp_path, capsys):
    sheet_path = tmp_path / "sheet.png"
    _sheet(sheet_path)
    rc = build(["--sheet", f"{sheet_path},category=potion,cell=8x8,padding=1", "--out", str(tmp_path / "d.npz")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown option 'padding'" in err
    assert "margin" in err and "spacing" in err  # lists the valid keys


# ---- (d) exact duplicates ----------------------------------------------------------------

def test_exact_duplicates_dropped_first_category_wins(tmp_path, capsys):
    shared, a_only, b_only = unique_sprites(3, size=16, seed=4)
    src = tmp_path / "src"
    save_png(src / "a_first" / "shared.png", shared)
    save_png(src / "a_first" / "own.png", a_only)
    # same pixels, different file bytes: duplicates are found by content, not by file hash
    (src / "b_second").mkdir(parents=True)
    Image.fromarray(shared, "RGBA").save(src / "b_second" / "copy.png", compress_level=0)
    assert (src / "b_second" / "copy.png").read_bytes() != (src / "a_first" / "shared.png").read_bytes()
    save_png(src / "b_second" / "own.png", b_only)
    save_png(src / "b_second" / "own-again.png", b_only)  # duplicate inside one category too
    out = tmp_path / "d.npz"
    _build_ok(["--folder", str(src), "--size", "16", "--holdout", "0", "--out", str(out)], capsys)
    d = load_dataset(out)
    assert d["categories"] == ["a_first", "b_second"]
    assert d["manifest"]["duplicates_dropped"] == 2
    assert len(d["images"]) == 3
    hits = [i for i, img in enumerate(d["images"]) if np.array_equal(img, shared)]
    assert len(hits) == 1
    assert d["categories"][d["labels"][hits[0]]] == "a_first"
    assert d["manifest"]["counts"]["a_first"]["train"] == 2
    assert d["manifest"]["counts"]["b_second"]["train"] == 1
    # every dropped file is named, with the sprite it repeats, in the manifest and on screen
    assert sorted(d["manifest"]["dropped_duplicates"], key=lambda x: x["file"]) == [
        {"file": "b_second/copy.png", "same_as": "a_first/shared.png"},
        {"file": "b_second/own.png", "same_as": "b_second/own-again.png"},
    ]
    out_text = capsys.readouterr().out
    assert "duplicate  b_second/copy.png (same as a_first/shared.png)" in out_text


def test_filtered_files_are_named_with_the_reason(tmp_path, capsys):
    src = tmp_path / "src"
    save_png(src / "cat" / "ok.png", unique_sprites(1, size=16)[0])
    save_png(src / "cat" / "faint.png", blank(16))
    _build_ok(["--folder", str(src), "--size", "16", "--holdout", "0", "--out", str(tmp_path / "d.npz")], capsys)
    m = load_dataset(tmp_path / "d.npz")["manifest"]
    assert m["filtered"] == [{"file": "cat/faint.png", "reason": "0 opaque pixels, fewer than --min-opaque 1"}]
    assert "filtered   cat/faint.png: 0 opaque pixels" in capsys.readouterr().out


def test_small_sprites_warn_and_upscale_fills_the_canvas(tmp_path, capsys):
    src = write_folder_dataset(tmp_path / "src", {"a": unique_sprites(3, size=16), "b": unique_sprites(3, size=16, seed=2)})
    _build_ok(["--folder", str(src), "--size", "32", "--out", str(tmp_path / "plain.npz")], capsys)
    err = capsys.readouterr().err
    assert "warning: 6 of 6 sprites are at most 16px" in err and "--upscale auto" in err
    _build_ok(["--folder", str(src), "--size", "32", "--upscale", "auto", "--out", str(tmp_path / "up.npz")], capsys)
    assert "warning" not in capsys.readouterr().err
    plain, up = load_dataset(tmp_path / "plain.npz"), load_dataset(tmp_path / "up.npz")
    first = unique_sprites(3, size=16)[0]
    i = next(k for k, img in enumerate(up["images"]) if np.array_equal(img[::2, ::2], first))
    assert np.array_equal(up["images"][i], np.repeat(np.repeat(first, 2, axis=0), 2, axis=1)), "2x nearest"
    assert (plain["images"][..., 3] > 0).sum() * 4 == (up["images"][..., 3] > 0).sum()
    assert up["manifest"]["upscale"] == "auto"
    assert build(["--folder", str(src), "--size", "32", "--upscale", "1.5", "--out", str(tmp_path / "x.npz")]) == 2
    assert "--upscale '1.5': give a whole factor" in capsys.readouterr().err


# ---- (e) fitting rule --------------------------------------------------------------------

def test_fit_smaller_sprite_is_centred_untouched():
    rng = np.random.RandomState(0)
    small = rng.randint(0, 256, size=(3, 5, 4)).astype(np.uint8)
    small[..., 3] = rng.randint(1, 256, size=(3, 5))  # semi-transparent but never fully transparent
    out = fit_to_size(small, 16)
    assert out.shape == (16, 16, 4) and out.dtype == np.uint8
    y0, x0 = (16 - 3) // 2, (16 - 5) // 2
    np.testing.assert_array_equal(out[y0:y0 + 3, x0:x0 + 5], small)
    pad = np.ones((16, 16), dtype=bool)
    pad[y0:y0 + 3, x0:x0 + 5] = False
    assert (out[pad] == 0).all(), "padding is fully transparent (RGBA 0)"


def test_fit_larger_sprite_nearest_downscale_keeps_aspect():
    # 64 wide x 32 tall, made of 4x4 blocks with distinct colours -> exactly one pixel per block at 16 px
    by, bx = np.mgrid[0:8, 0:16]
    blocks = np.zeros((8, 16, 4), dtype=np.uint8)
    blocks[..., 0] = bx * 15
    blocks[..., 1] = by * 30
    blocks[..., 2] = (bx * 7 + by * 3) % 256
    blocks[..., 3] = 255
    big = blocks.repeat(4, axis=0).repeat(4, axis=1)
    assert big.shape == (32, 64, 4)
    out = fit_to_size(big, 16)
    assert out.shape == (16, 16, 4)
    # aspect 2:1 kept -> a 16x8 band centred vertically (rows 4..11), nothing stretched
    np.testing.assert_array_equal(out[4:12], blocks)
    assert (out[:4] == 0).all() and (out[12:] == 0).all()


def test_fit_non_integer_downscale_creates_no_new_colours():
    rng = np.random.RandomState(1)
    palette = np.array([[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255], [250, 250, 10, 255]], np.uint8)
    big = palette[rng.randint(0, 4, size=(20, 40))]
    out = fit_to_size(big, 16)  # scale 0.4 -> 16x8
    band = out[4:12]
    assert (band[..., 3] == 255).all() and (out[:4, :, 3] == 0).all() and (out[12:, :, 3] == 0).all()
    colours = {tuple(p) for p in band.reshape(-1, 4)}
    assert colours <= {tuple(p) for p in palette}, "nearest-neighbour must not blend colours"


def test_builder_applies_fit_rule(tmp_path, capsys):
    big = np.zeros((40, 20, 4), np.uint8)
    big[..., 0], big[..., 3] = 200, 255
    big[::2, ::2, 1] = 99
    small = rect_sprite(10, (1, 2, 3), (2, 2, 8, 8))
    src = tmp_path / "src"
    save_png(src / "c" / "big.png", big)
    save_png(src / "c" / "small.png", small)
    out = tmp_path / "d.npz"
    _build_ok(["--folder", str(src), "--size", "16", "--holdout", "0", "--out", str(out)], capsys)
    imgs = load_dataset(out)["images"]
    np.testing.assert_array_equal(imgs[0], fit_to_size(load_rgba(src / "c" / "big.png"), 16))
    np.testing.assert_array_equal(imgs[1], fit_to_size(small, 16))
    assert (imgs[0][:, :4, 3] == 0).all() and (imgs[0][:, 4:12, 3] == 255).all()  # 8x16 band centred


# ---- (f) empty categories ----------------------------------------------------------------

def test_empty_category_folder_is_a_clear_error(tmp_path, capsys):
    src = write_folder_dataset(tmp_path / "src", {"full": unique_sprites(2)})
    (src / "hollow").mkdir()
    rc = build(["--folder", str(src), "--out", str(tmp_path / "d.npz")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "category 'hollow'" in err and "no PNG files" in err
    assert not (tmp_path / "d.npz").exists()


def test_category_emptied_by_filters_is_a_clear_error(tmp_path, capsys):
    src = write_folder_dataset(tmp_path / "src", {
        "full": unique_sprites(2),
        "speck": [rect_sprite(16, (9, 9, 9), (0, 0, 2, 2))],  # 4 opaque pixels
    })
    rc = build(["--folder", str(src), "--min-opaque", "10", "--out", str(tmp_path / "d.npz")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "category 'speck'" in err and "--min-opaque" in err


def test_category_of_only_duplicates_is_a_clear_error(tmp_path, capsys):
    imgs = unique_sprites(2)
    src = write_folder_dataset(tmp_path / "src", {"a": imgs, "b": imgs[:1]})
    rc = build(["--folder", str(src), "--out", str(tmp_path / "d.npz")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "category 'b'" in err


def test_missing_dataset_file_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope.npz")


# ---- (g) stratified held-out split -------------------------------------------------------

def test_stratified_split_every_category_held_out(tmp_path, capsys):
    sizes = {"five": 5, "one": 1, "twenty": 20, "two": 2}
    src = write_folder_dataset(tmp_path / "src", {
        name: unique_sprites(n, size=16, seed=k) for k, (name, n) in enumerate(sizes.items())})
    outs = []
    for i, seed in enumerate(["3", "3"] + [str(s) for s in range(5)]):
        out = tmp_path / f"d{i}.npz"
        _build_ok(["--folder", str(src), "--size", "16", "--holdout", "0.1", "--seed", seed, "--out", str(out)],
                  capsys)
        outs.append(load_dataset(out))
    d = outs[0]
    labels, held = d["labels"], d["held_out"]
    for k, name in enumerate(d["categories"]):
        n_held = int(held[labels == k].sum())
        expected = {"one": 0, "two": 1, "five": 1, "twenty": 2}[name]
        assert n_held == expected, f"{name}: {n_held} held out"
        assert d["manifest"]["counts"][name] == {"train": sizes[name] - expected, "eval": expected}
    np.testing.assert_array_equal(outs[0]["held_out"], outs[1]["held_out"])  # same seed, same split
    assert len({outs[i]["held_out"].tobytes() for i in range(2, 7)}) > 1, "the seed must change the split"
    assert d["manifest"]["split_seed"] == 3 and d["manifest"]["held_out_fraction"] == 0.1


def test_stratified_split_function_is_deterministic():
    labels = np.repeat(np.arange(6), [1, 2, 3, 7, 10, 40])
    a = stratified_split(labels, 0.2, seed=11)
    b = stratified_split(labels, 0.2, seed=11)
    np.testing.assert_array_equal(a, b)
    per = [int(a[labels == k].sum()) for k in range(6)]
    assert per == [0, 1, 1, 1, 2, 8]
    assert not stratified_split(labels, 0.0, seed=11).any(), "--holdout 0 holds nothing out"


# ---- (h) manifest ------------------------------------------------------------------------

def test_manifest_counts_and_content_hash(tmp_path, capsys):
    src = write_folder_dataset(tmp_path / "src", {"alpha": unique_sprites(4, seed=1),
                                                  "beta": unique_sprites(3, seed=2)})
    a, b, c = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    _build_ok(["--folder", str(src), "--size", "16", "--out", str(a)], capsys)
    _build_ok(["--folder", str(src), "--size", "16", "--out", str(b)], capsys)
    m = json.loads(a.with_suffix(".manifest.json").read_text())
    assert m["categories"] == ["alpha", "beta"]
    assert m["total"] == 7 and m["size"] == 16 and m["channels"] == 4
    assert {k: v["train"] + v["eval"] for k, v in m["counts"].items()} == {"alpha": 4, "beta": 3}
    assert all(v["eval"] >= 1 for v in m["counts"].values())
    assert re.fullmatch(r"[0-9a-f]{64}", m["content_sha256"])
    assert m["content_sha256"] == load_dataset(b)["manifest"]["content_sha256"], "same input, same hash"
    # change a single pixel of one image
    p = src / "beta" / "001.png"
    img = load_rgba(p)
    img[8, 8, 0] ^= 1
    save_png(p, img)
    _build_ok(["--folder", str(src), "--size", "16", "--out", str(c)], capsys)
    assert load_dataset(c)["manifest"]["content_sha256"] != m["content_sha256"]
