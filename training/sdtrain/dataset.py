"""Build a training dataset: folders of sprites, sprite sheets, or the DCSS preset.

    python -m sdtrain.dataset --folder my_sprites/ --out training/.cache/mine.npz
    python -m sdtrain.dataset --sheet "sheet.png,category=potion,cell=16x16,margin=0,spacing=1" --out ...
    python -m sdtrain.dataset --preset dcss --source ../shared/datasets/dcss-rltiles

The result is one .npz (uint8 images [N,S,S,4], labels, eval split) plus a
manifest JSON beside it (source, counts per category, content hash, skipped files).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .images import ImageError, fit_to_size, load_rgba, slice_sheet
from .progress import Progress

# category -> folders (searched recursively), in priority order for duplicates.
DCSS_MAPPING: "OrderedDict[str, List[str]]" = OrderedDict([
    ("character", ["player/base", "mon/humanoids", "mon/unique", "mon/demihumanoids"]),
    ("monster", ["mon/animals", "mon/undead", "mon/demons", "mon/aberrations", "mon/amorphous",
                 "mon/dragons", "mon/draco", "mon/fungi_plants", "mon/aquatic", "mon/mutantbeast",
                 "mon/eyes", "mon/holy", "mon/abyss", "mon/nonliving", "UNUSED/monsters"]),
    ("weapon", ["item/weapon", "item/staff", "item/rod", "UNUSED/weapons"]),
    ("armour", ["item/armour", "UNUSED/armour"]),
    ("potion", ["item/potion"]),
    ("food", ["item/food", "UNUSED/food"]),
    ("treasure", ["item/ring", "item/amulet", "item/gem", "item/gold", "item/talisman"]),
    ("scroll", ["item/scroll", "item/book", "item/parchment"]),
    ("spell", ["gui/spells", "gui/invocations", "UNUSED/spells"]),
    ("wall", ["dngn/wall"]),
    ("floor", ["dngn/floor"]),
])


class DatasetError(Exception):
    """Bad dataset input; the message names the file and the fix."""


@dataclass
class Collected:
    images: List[np.ndarray] = field(default_factory=list)
    labels: List[int] = field(default_factory=list)
    sources: List[str] = field(default_factory=list)
    skipped: List[Dict[str, str]] = field(default_factory=list)
    # every dropped file, named: {"file", "same_as"} for duplicates, {"file", "reason"} for filtered
    dropped: List[Dict[str, str]] = field(default_factory=list)
    filtered_out: List[Dict[str, str]] = field(default_factory=list)
    # kept sprites whose longer side is at most half of --size (before any --upscale)
    small: int = 0

    @property
    def duplicates(self) -> int:
        return len(self.dropped)

    @property
    def filtered(self) -> int:
        return len(self.filtered_out)


@dataclass
class SheetSpec:
    path: Path
    category: str
    cell: Tuple[int, int]
    margin: int = 0
    spacing: int = 0

    @staticmethod
    def parse(text: str) -> "SheetSpec":
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise DatasetError("--sheet needs 'FILE.png,category=NAME,cell=WxH[,margin=M][,spacing=S]'")
        path, opts = Path(parts[0]), {}
        for p in parts[1:]:
            if "=" not in p:
                raise DatasetError(f"--sheet {text!r}: '{p}' is not key=value; keys are category, cell, margin, spacing")
            k, v = p.split("=", 1)
            if k not in ("category", "cell", "margin", "spacing"):
                raise DatasetError(f"--sheet {path}: unknown option '{k}'; use category, cell, margin or spacing")
            opts[k] = v
        if "category" not in opts or "cell" not in opts:
            raise DatasetError(f"--sheet {path}: needs category=NAME and cell=WxH (e.g. cell=32x32)")
        try:
            cw, ch = (int(x) for x in opts["cell"].lower().split("x"))
            margin, spacing = int(opts.get("margin", 0)), int(opts.get("spacing", 0))
        except ValueError:
            raise DatasetError(f"--sheet {path}: cell must look like 32x32 and margin/spacing must be integers")
        return SheetSpec(path, opts["category"], (cw, ch), margin, spacing)


def _pngs(folder: Path) -> List[Path]:
    """Every .png below `folder`, including dangling links (reported as skipped, never dropped silently)."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".png" and (p.is_file() or p.is_symlink()))


def upscale(img: np.ndarray, size: int, factor: str) -> np.ndarray:
    """Nearest-neighbour integer upscale: by `factor`, or "auto" (the largest that fits `size`); a
    sprite the factor would push past `size` is left as it is (the fitting rule then applies)."""
    longest = max(img.shape[:2])
    f = max(1, size // longest) if factor == "auto" else int(factor)
    if f <= 1 or longest * f > size:
        return img
    return np.repeat(np.repeat(img, f, axis=0), f, axis=1)


class Builder:
    def __init__(self, categories: Sequence[str], size: int, min_opaque: int, exact_size: bool,
                 upscale: str = "1"):
        self.categories = list(categories)
        self.size = size
        self.min_opaque = min_opaque
        self.exact_size = exact_size
        self.upscale = upscale
        self.out = Collected()
        self._seen: Dict[bytes, int] = {}

    def add(self, img: np.ndarray, category: str, source: str) -> None:
        if self.exact_size and img.shape[:2] != (self.size, self.size):
            self.out.filtered_out.append({"file": source, "reason": f"{img.shape[1]}x{img.shape[0]}, not "
                                                                    f"{self.size}x{self.size} (--exact-size)"})
            return
        opaque = int((img[..., 3] > 127).sum())
        if opaque < self.min_opaque:
            self.out.filtered_out.append({"file": source, "reason": f"{opaque} opaque pixels, fewer than "
                                                                    f"--min-opaque {self.min_opaque}"})
            return
        small = 2 * max(img.shape[:2]) <= self.size
        img = upscale(img, self.size, self.upscale)
        fitted = fit_to_size(img, self.size)
        key = hashlib.sha1(fitted.tobytes()).digest()
        if key in self._seen:  # first category in order wins
            self.out.dropped.append({"file": source, "same_as": self.out.sources[self._seen[key]]})
            return
        self.out.small += small
        self._seen[key] = len(self.out.images)
        self.out.images.append(fitted)
        self.out.labels.append(self.categories.index(category))
        self.out.sources.append(source)

    def add_file(self, path: Path, category: str, root: Path) -> None:
        try:
            img = load_rgba(path)
        except ImageError as e:
            self.out.skipped.append({"file": str(path), "reason": str(e)})
            return
        self.add(img, category, str(path.relative_to(root)) if root in path.parents else str(path))

    def add_folders(self, category: str, folders: Sequence[Path], root: Path, progress: Optional[Progress]) -> None:
        files: List[Path] = []
        for f in folders:
            if not f.is_dir():
                raise DatasetError(f"category '{category}': folder {f} does not exist; check --source")
            files.extend(_pngs(f))
        if not files:
            raise DatasetError(f"category '{category}': no PNG files under {', '.join(map(str, folders))}; "
                               "add sprites or remove the category")
        before = len(self.out.images)
        for p in files:
            self.add_file(p, category, root)
            if progress:
                progress.update(1)
        if len(self.out.images) == before:
            raise DatasetError(f"category '{category}': none of its {len(files)} files passed the filters "
                               f"(size {self.size}, at least {self.min_opaque} opaque pixels); "
                               "lower --min-opaque or add sprites")

    def add_sheet(self, spec: SheetSpec) -> None:
        try:
            img = load_rgba(spec.path)
        except ImageError as e:
            raise DatasetError(f"sprite sheet {e}; check the path and that it is a PNG")
        cells = slice_sheet(img, spec.cell, spec.margin, spec.spacing, str(spec.path))
        if not cells:
            raise DatasetError(f"sprite sheet {spec.path}: every cell is empty; check cell size and margin")
        for (r, c), cell in cells:
            self.add(cell, spec.category, f"{spec.path}#r{r}c{c}")


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out items: round(fraction * n) per category (>=1 when n >= 2 and fraction > 0)."""
    rng = np.random.RandomState(seed)
    held = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        idx = np.nonzero(labels == k)[0]
        n = int(round(fraction * len(idx)))
        if len(idx) >= 2 and fraction > 0:
            n = max(1, n)
        held[rng.permutation(idx)[:n]] = True
    return held


def content_hash(images: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(images.tobytes())
    h.update(labels.astype(np.int64).tobytes())
    h.update(json.dumps(list(names)).encode())
    return h.hexdigest()


def save_dataset(out: Path, images: np.ndarray, labels: np.ndarray, held: np.ndarray,
                 names: Sequence[str], manifest: Dict) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, images=images, labels=labels, held_out=held, categories=np.array(names))
    tmp.replace(out)
    mpath = out.with_suffix(".manifest.json")
    mpath.write_text(json.dumps(manifest, indent=2) + "\n")
    return mpath


# a category is opaque (the runtime samples its alpha as known) when this share of its sprites has no
# transparent pixel: DCSS walls 0.95 and floors 0.97, every other DCSS category 0.00; Minetest blocks 1.00
OPAQUE_SHARE = 0.9


def opaque_categories(images: np.ndarray, labels: np.ndarray, names: Sequence[str],
                      share: float = OPAQUE_SHARE) -> List[str]:
    """Categories whose sprites are fully opaque (alpha >= 128 everywhere) in at least `share` of cases;
    images [N, H, W, 4] uint8. RGB-only sets have none."""
    if images.ndim != 4 or images.shape[-1] != 4:
        return []
    whole = (images[..., 3] >= 128).reshape(len(images), -1).all(axis=1)
    return [n for i, n in enumerate(names) if (labels == i).any() and whole[labels == i].mean() >= share]


def load_dataset(path: Path) -> Dict:
    """Load a built dataset; returns dict with images, labels, held_out, categories, manifest."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset {path} not found; build it with `npm run dataset -- --help`")
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["categories"] = [str(c) for c in d["categories"]]
    mpath = path.with_suffix(".manifest.json")
    d["manifest"] = json.loads(mpath.read_text()) if mpath.exists() else {}
    return d


def build(args: argparse.Namespace) -> Dict:
    size = args.size
    args.upscale = str(getattr(args, "upscale", "1"))
    if args.upscale != "auto" and not (args.upscale.isdigit() and int(args.upscale) >= 1):
        raise DatasetError(f"--upscale {args.upscale!r}: give a whole factor such as 2, or auto")
    if args.preset == "dcss":
        if args.folder or args.sheet:
            raise DatasetError("--preset dcss cannot be combined with --folder/--sheet")
        root = Path(args.source)
        if not root.is_dir():
            raise DatasetError(f"DCSS source {root} not found; pass --source pointing at crawl-ref/source/rltiles")
        names = list(DCSS_MAPPING)
        b = Builder(names, size, args.min_opaque if args.min_opaque is not None else 60, exact_size=True)
        plan = [(cat, [root / f for f in fs]) for cat, fs in DCSS_MAPPING.items()]
        source = {"preset": "dcss", "root": str(root)}
        roots = root
    else:
        if not args.folder and not args.sheet:
            raise DatasetError("nothing to build: give --folder DIR (one sub-folder per category), "
                               "--sheet SPEC, or --preset dcss")
        specs = [SheetSpec.parse(s) for s in args.sheet]
        names: List[str] = []
        plan = []
        roots = Path(args.folder) if args.folder else Path(".")
        if args.folder:
            folder = Path(args.folder)
            if not folder.is_dir():
                raise DatasetError(f"--folder {folder} is not a directory")
            subs = sorted(p for p in folder.iterdir() if p.is_dir())
            if not subs:
                raise DatasetError(f"--folder {folder} has no sub-folders; make one sub-folder per category")
            for s in subs:
                names.append(s.name)
                plan.append((s.name, [s]))
        for sp in specs:
            if sp.category not in names:
                names.append(sp.category)
        b = Builder(names, size, args.min_opaque if args.min_opaque is not None else 1, exact_size=args.exact_size,
                    upscale=args.upscale)
        source = {"folder": args.folder, "sheets": args.sheet}
    total_files = sum(len(_pngs(f)) for _, fs in plan for f in fs if f.is_dir())
    progress = Progress(total_files, "scan", unit="img") if total_files else None
    for cat, folders in plan:
        b.add_folders(cat, folders, roots, progress)
    if progress:
        progress.close()
    if args.preset != "dcss":
        for sp in [SheetSpec.parse(s) for s in args.sheet]:
            b.add_sheet(sp)
    col = b.out
    if not col.images:
        raise DatasetError("no sprites survived; check the inputs and filters")
    images = np.stack(col.images)
    labels = np.array(col.labels, dtype=np.int64)
    for k, n in enumerate(names):
        if not (labels == k).any():
            raise DatasetError(f"category '{n}' is empty after filtering; add sprites to it or remove it")
    held = stratified_split(labels, args.holdout, args.seed)
    counts = {n: {"train": int(((labels == k) & ~held).sum()), "eval": int(((labels == k) & held).sum())}
              for k, n in enumerate(names)}
    manifest = {
        "format_version": 1,
        "source": source,
        "size": size,
        "channels": 4,
        "categories": names,
        "counts": counts,
        "total": int(len(labels)),
        "held_out_fraction": args.holdout,
        "split_seed": args.seed,
        "duplicates_dropped": col.duplicates,
        "filtered_out": col.filtered,
        "upscale": args.upscale,
        "dropped_duplicates": col.dropped,
        "filtered": col.filtered_out,
        "skipped": col.skipped,
        "content_sha256": content_hash(images, labels, names),
        "fit_rule": "nearest-neighbour downscale keeping aspect if larger; centred on transparent padding; RGB=0 where alpha=0",
    }
    out = Path(args.out)
    mpath = save_dataset(out, images, labels, held, names, manifest)
    print(f"dataset: {len(labels)} sprites in {len(names)} categories -> {out} (manifest {mpath})")
    for n, c in counts.items():
        print(f"  {n:<10} train {c['train']:>5}  eval {c['eval']:>4}")
    print(f"  dropped {col.duplicates} duplicates, filtered {col.filtered}"
          + (" (each named in the manifest):" if col.dropped or col.filtered_out else ""))
    for d in col.dropped[:10]:
        print(f"    duplicate  {d['file']} (same as {d['same_as']})")
    for f in col.filtered_out[:10]:
        print(f"    filtered   {f['file']}: {f['reason']}")
    if col.duplicates + col.filtered > 20:
        print(f"    ... {col.duplicates + col.filtered - 20} more in {mpath}")
    if args.upscale == "1" and 2 * col.small > len(labels):
        print(f"warning: {col.small} of {len(labels)} sprites are at most {size // 2}px, a quarter of the {size}px "
              f"canvas or less; pass --upscale auto (nearest-neighbour, whole factors) to fill it, or --size "
              f"{size // 2} to train at their size", file=sys.stderr)
    if col.skipped:
        print(f"  skipped {len(col.skipped)} unreadable file(s):")
        for s in col.skipped:
            print(f"    {s['reason']}")
    return manifest


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="npm run dataset --", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folder", help="directory with one sub-folder of PNGs per category")
    p.add_argument("--sheet", action="append", default=[],
                   help="sprite sheet 'FILE.png,category=NAME,cell=WxH[,margin=M][,spacing=S]' (repeatable)")
    p.add_argument("--preset", choices=["dcss"], help="build the default DCSS dataset with its fixed mapping")
    p.add_argument("--source", default="../shared/datasets/dcss-rltiles", help="DCSS rltiles folder (with --preset dcss)")
    p.add_argument("--size", type=int, default=32, help="model size in pixels (default 32)")
    p.add_argument("--min-opaque", type=int, default=None,
                   help="minimum pixels with alpha > 127 (default 60 for dcss, 1 otherwise)")
    p.add_argument("--exact-size", action="store_true", help="keep only images exactly --size square")
    p.add_argument("--upscale", default="1", metavar="N|auto",
                   help="scale sprites up by a whole factor (nearest neighbour) before fitting them on the --size "
                        "canvas; auto: the largest factor that fits each sprite (default 1: as they are)")
    p.add_argument("--holdout", type=float, default=0.1, help="stratified held-out fraction (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--out", default="training/.cache/dataset.npz", help="output .npz (manifest written beside it)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = make_parser().parse_args(argv)
    if args.preset == "dcss" and args.out == "training/.cache/dataset.npz":
        args.out = f"training/.cache/dcss-{args.size}.npz"
    try:
        build(args)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
