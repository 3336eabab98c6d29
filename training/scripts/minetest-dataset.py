#!/usr/bin/python3
"""A sprite set that is not ours: the Minetest game's 16x16 textures, sorted into four categories.

    sudo apt-get install -y minetest-data
    /usr/bin/python3 training/scripts/minetest-dataset.py --out training/.cache/minetest-sprites
    npm run dataset -- --folder training/.cache/minetest-sprites --size 32 --upscale 2 \
        --out training/.cache/minetest-32.npz

The textures are Debian's `minetest-data` (minetest_game, CC-BY-SA-3.0: credit the Minetest
contributors and share derived sprites alike; see /usr/share/doc/minetest-data/copyright). They are
copied, never committed. Categories by file name and shape:
  tools   - picks, axes, shovels, swords, hoes, buckets and other hand-held tools
  blocks  - full square tiles (at least 95% opaque pixels): stone, wood, ores, bricks, leaves, ...
  plants  - saplings, flowers, grasses, ferns, crops and other see-through plants
  items   - see-through craft items: lumps, ingots, crystals, dyes, books, food, ...
Anything else (overlays, animations, GUI parts) is left out.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_SOURCE = "/usr/share/games/minetest/games/minetest_game/mods"
TOOLS = re.compile(r"tool_|^bucket|binoculars|screwdriver|_hoe_|sword|pick|shovel|axe(?!_)|mapping_kit|fishing|shears")
PLANTS = re.compile(r"sapling|flower|grass|fern|shrub|papyrus|kelp|coral_(?!skeleton)|mushroom|seedling|cactus|"
                    r"farming_(wheat|cotton)_\d|_stem|dandelion|rose|tulip|geranium|viola|chrysanthemum|waterlily")
ITEMS = re.compile(r"lump|ingot|crystal|fragment|shard|book|paper|stick|flint|dye_|seed|bread|flour|wheat|apple|"
                   r"blueberries|string|snowball|clay_brick|bowl|vessels_|key|steel_bottle|glass_bottle|drinking|"
                   r"cotton|sugar|coal|torch|door_.*_item|sign_|ladder|rail|mese_crystal|bones_|skull|cloud|boat|cart")
OVERLAYS = re.compile(r"overlay|_inv|_slot|_bg|_fg|formspec|gui|progress|crack|bubble|heart|footprint|invisible|"
                      r"transparent|_side_dark|_lock|_detail")


def category(name: str, rgba: np.ndarray) -> str | None:
    """The category of one 16x16 texture (None: left out)."""
    stem = name[:-4]
    if OVERLAYS.search(stem):
        return None
    if TOOLS.search(stem):
        return "tools"
    if (rgba[..., 3] > 127).mean() >= 0.95:
        return "blocks"
    if PLANTS.search(stem):
        return "plants"
    if ITEMS.search(stem):
        return "items"
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=DEFAULT_SOURCE, help=f"minetest_game's mods folder (default {DEFAULT_SOURCE})")
    p.add_argument("--out", required=True, help="folder to write <category>/<file>.png into (replaced)")
    a = p.parse_args()
    src = Path(a.source)
    if not src.is_dir():
        print(f"error: {src} not found; install it with `sudo apt-get install -y minetest-data`", file=sys.stderr)
        return 2
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    counts: dict[str, int] = {}
    for path in sorted(src.glob("*/textures/*.png")):
        with Image.open(path) as im:
            if im.size != (16, 16):
                continue
            rgba = np.asarray(im.convert("RGBA"))
        cat = category(path.name, rgba)
        if cat is None:
            continue
        (out / cat).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / cat / path.name)
        counts[cat] = counts.get(cat, 0) + 1
    print(f"{sum(counts.values())} textures into {out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
