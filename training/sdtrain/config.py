"""The one training config dataclass, saved as config.json beside the weights."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, Optional

from .model import ModelConfig
from .schedule import ScheduleConfig


@dataclass
class TrainConfig:
    data: str = "training/.cache/dcss-32.npz"
    out: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    steps: int = 20000
    batch: int = 128
    lr: float = 1e-3
    warmup: int = 500
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    cond_drop: float = 0.1
    # Category mixtures: this share of each batch is a pair of sprites from two categories put together,
    # with the context split by their shares of the opaque pixels, so a context such as 0.5 monster +
    # 0.5 potion has sprites of both to learn from. 0 = off. mix_style "cutmix": a random box of the
    # second pasted onto the first; "paste": the whole second sprite, scaled down, pasted onto the first.
    mix_prob: float = 0.0
    mix_style: str = "cutmix"
    min_snr_gamma: float = 5.0
    flip: bool = True
    balance: float = 0.5
    # Extra sampling weight per category name on top of `balance` (e.g. {"monster": 2.0}: twice the
    # category's share of each batch); categories not named keep 1.
    category_weights: Dict[str, float] = field(default_factory=dict)
    seed: int = 0
    sample_every: int = 1000
    ckpt_every: int = 250
    max_minutes: float = 0.0
    device: str = "auto"
    amp: bool = True
    # Distillation: when set, the target is not the sampled noise but this exported model's
    # guided prediction eps_u + g (eps_c - eps_u), so the student samples with guidance 1
    # (one network row per sprite instead of two). Path to the teacher's model.json.
    teacher: str = ""
    teacher_guidance: float = 3.0
    # Fine-tuning: an exported model.json or a checkpoint.pt whose (EMA) weights start this run
    # (model and EMA), with its network shape. Its context input is resized to the dataset's
    # categories: same-named ones keep their learned column, new ones start as `new_category_init`
    # (see finetune.py). Parameters the source lacks (a module added since, e.g. input_skip) keep
    # their initialisation; the optimizer, step and schedule start fresh.
    init_from: str = ""
    new_category_init: str = "mean"
    # Parameters left as they are (finetune.FROZEN_PREFIXES): "none", or "encoder" (down path and middle).
    freeze: str = "none"

    def to_dict(self) -> Dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["schedule"] = asdict(self.schedule)
        return d

    @staticmethod
    def from_dict(d: Dict) -> "TrainConfig":
        d = dict(d)
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known keys: {sorted(known)}")
        d["model"] = ModelConfig.from_dict(d.get("model", {}))
        d["schedule"] = ScheduleConfig(**d.get("schedule", {}))
        return TrainConfig(**d)

    def save(self, path: Path) -> None:
        tmp = Path(str(path) + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> "TrainConfig":
        return TrainConfig.from_dict(json.loads(Path(path).read_text()))
