"""Train the context U-Net with the course's DDPM recipe (plus EMA, AdamW, min-SNR).

    npm run train -- --data training/.cache/dcss-32.npz --out runs/dcss32 --steps 20000
    npm run train -- --out runs/dcss32 --resume          # continue after a stop or a kill -9
    torchrun --nproc_per_node 2 --redirects 2 --tee 2 --log_dir runs/logs -m sdtrain.train ...
                                                          # DistributedDataParallel (gloo on CPU)
(Debian's PyTorch 1.13 on Python 3.11 needs the --redirects/--tee values shown: the launcher's
defaults of 0 fail to parse there.)

Checkpoints are written atomically (temp file + rename) every --ckpt-every steps,
and on Ctrl-C / SIGTERM. A resumed run restores weights, EMA, optimizer, step and
every random generator, so it continues exactly where the checkpoint left it.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrainConfig
from .dataset import load_dataset, opaque_categories
from .finetune import FROZEN_PREFIXES, NEW_CATEGORY_INITS, InitSourceError, freeze, load_init_source, resize_context
from .images import save_grid
from .mixing import MIX_STYLES, put_over
from .model import ContextUnet, ModelConfig, count_flops, count_params
from .plots import loss_curve
from .progress import Progress
from .runlock import RunLock, RunLockError
from .schedule import DDPMSchedule, ScheduleConfig, sample
from .teacher import Teacher, TeacherError, load_teacher
from .threads import choose_threads


class TrainError(Exception):
    pass


# How a new category's context column starts, for the log.
INIT_WORDS = {"mean": "mean of the source's", "zero": "zero: the unconditional model", "random": "random"}

# The fine-tune recipe, the defaults under --init-from (measured in training/README.md, "Fine-tuning
# on your own sprites"); flags given on the command line still win.
# measured on the Minetest worked example (training/README.md): in 23 CPU minutes the frozen encoder reaches the
# accuracy of training every layer for 2000 steps with a lower Frechet distance and no copies
FINETUNE_DEFAULTS = {"lr": 3e-4, "warmup": 50, "ema_decay": 0.995, "batch": 32, "steps": 3200, "sample_every": 500,
                     "freeze": "encoder"}


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1,1] NCHW -> uint8 NHWC."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.dist = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        dev = cfg.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        if dev.startswith("cuda") and self.dist:
            dev = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        self.device = torch.device(dev)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if self.dist:
            import torch.distributed as dist
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if cfg.batch % self.world:
            raise TrainError(f"--batch {cfg.batch} must be divisible by the {self.world} processes")
        torch.manual_seed(cfg.seed)

        data = load_dataset(Path(cfg.data))
        self.categories: List[str] = data["categories"]
        train_mask = ~data["held_out"]
        imgs = torch.from_numpy(data["images"][train_mask]).permute(0, 3, 1, 2).contiguous()
        labels = torch.from_numpy(data["labels"][train_mask])
        if cfg.init_from and imgs.shape[2] != cfg.model.size and not resume:
            raise TrainError(f"--init-from {cfg.init_from} makes {cfg.model.size}px sprites but the dataset's are "
                             f"{imgs.shape[2]}px; rebuild it with `npm run dataset -- --size {cfg.model.size}` "
                             f"(add --upscale {max(1, cfg.model.size // imgs.shape[2])} for {imgs.shape[2]}px art)")
        if imgs.shape[1] != cfg.model.channels or imgs.shape[2] != cfg.model.size:
            raise TrainError(f"dataset images are {imgs.shape[1]}ch {imgs.shape[2]}px but the model expects "
                             f"{cfg.model.channels}ch {cfg.model.size}px; rebuild the dataset with --size "
                             f"{cfg.model.size} or pass --size {imgs.shape[2]}")
        if cfg.model.n_context != len(self.categories):
            cfg.model = ModelConfig.from_dict({**cfg.model.to_dict(), "n_context": len(self.categories)})
        self.data_manifest = data["manifest"]
        self.opaque = opaque_categories(data["images"][train_mask], data["labels"][train_mask], self.categories)
        self.images = imgs.to(self.device)
        self.labels = labels.to(self.device)
        counts = torch.bincount(labels, minlength=len(self.categories)).double()
        unknown = sorted(set(cfg.category_weights) - set(self.categories))
        if unknown:
            raise TrainError(f"--category-weight names {', '.join(unknown)}, which the dataset {cfg.data} lacks; "
                             f"its categories: {', '.join(self.categories)}")
        class_p = torch.from_numpy(category_shares(counts.numpy(), cfg.balance, cfg.category_weights, self.categories))
        self.sample_w = (class_p / counts)[labels].float().to(self.device)

        self.teacher: Optional[Teacher] = None
        if cfg.teacher:
            try:
                self.teacher = load_teacher(Path(cfg.teacher)).to(self.device)
            except TeacherError as e:
                raise TrainError(str(e)) from None
            if self.teacher.categories != self.categories:
                raise TrainError(f"teacher {cfg.teacher} has categories {self.teacher.categories}, the dataset has "
                                 f"{self.categories}; distil from a model trained on the same dataset")
            ts = self.teacher.meta.get("schedule", {})
            if (ts.get("T"), ts.get("beta_start"), ts.get("beta_end")) != (
                    cfg.schedule.T, cfg.schedule.beta_start, cfg.schedule.beta_end):
                raise TrainError(f"teacher schedule {ts} differs from the student's {cfg.schedule}")
            tm = self.teacher.model.cfg
            if (tm.size, tm.channels) != (cfg.model.size, cfg.model.channels):
                raise TrainError(f"teacher works on {tm.channels}ch {tm.size}px images, the student on "
                                 f"{cfg.model.channels}ch {cfg.model.size}px")

        self.schedule = DDPMSchedule(cfg.schedule)
        self.alpha_bar = self.schedule.alpha_bar.float().to(self.device)
        self.model = ContextUnet(cfg.model).to(self.device)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        freeze(self.model, cfg.freeze)
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        self.net = self.model
        if self.dist:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.net = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(cfg.seed * 1000 + self.rank)
        self.step = 0
        self.history: Dict[str, List[float]] = {"step": [], "loss": [], "lr": []}
        self.images_seen = 0
        self.train_seconds = 0.0
        self._stop = False
        self._outputs_at = -1  # the step whose grid and plot were written last
        self.threads_why = ""  # why that many CPU threads, for the log (set by main)
        self.ckpt_path = self.out / "checkpoint.pt"
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self._load()
        elif self.ckpt_path.exists():
            raise TrainError(f"{self.ckpt_path} exists; pass --resume to continue it, or choose another --out")
        elif cfg.init_from:
            self._init_from(Path(cfg.init_from))

    # ---- checkpoints -------------------------------------------------
    def _gen_states(self) -> List[torch.Tensor]:
        state = self.gen.get_state()
        if not self.dist:
            return [state]
        import torch.distributed as dist
        out: List = [None] * self.world
        dist.all_gather_object(out, state.cpu())
        return out

    def save(self) -> None:
        gens = self._gen_states()
        if self.rank != 0:
            return
        ckpt = {
            "format": "spritediffusion-checkpoint-1",
            "config": self.cfg.to_dict(),
            "categories": self.categories,
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "gen_states": [g.cpu() for g in gens],
            "cpu_rng": torch.get_rng_state(),
            "history": self.history,
            "images_seen": self.images_seen,
            "train_seconds": self.train_seconds,
            "data_manifest": self.data_manifest,
            "opaque": self.opaque,
        }
        atomic_save(ckpt, self.ckpt_path)
        self.cfg.save(self.out / "config.json")

    def _load(self) -> None:
        if not self.ckpt_path.exists():
            raise TrainError(f"--resume: no checkpoint at {self.ckpt_path}; start without --resume")
        try:
            ck = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise TrainError(f"checkpoint {self.ckpt_path} is unreadable ({e}); "
                             f"restore a copy or start a fresh run in another --out") from e
        if ck.get("categories") != self.categories:
            raise TrainError(f"checkpoint categories {ck.get('categories')} differ from the dataset's "
                             f"{self.categories}; resume with the same --data")
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["opt"])
        self.step = ck["step"]
        states = ck["gen_states"]
        if len(states) != self.world:
            raise TrainError(f"checkpoint was written by {len(states)} process(es) but {self.world} are running; "
                             "resume with the same number of processes")
        self.gen.set_state(states[self.rank].to(self.gen.get_state().device))
        torch.set_rng_state(ck["cpu_rng"])
        self.history = ck["history"]
        self.images_seen = ck["images_seen"]
        self.train_seconds = ck.get("train_seconds", 0.0)

    def _init_from(self, path: Path) -> None:
        """Starts model and EMA from another network (fine-tuning): a checkpoint's EMA weights or an
        exported model.json. Its context input is resized to this dataset's categories (see
        finetune.py); modules the source lacks keep their initialisation."""
        try:
            src = load_init_source(path)
        except InitSourceError as e:
            raise TrainError(str(e)) from None
        g = torch.Generator().manual_seed(self.cfg.seed)
        weights, kept, new = resize_context(src.weights, src.categories, self.categories,
                                            self.cfg.new_category_init, g)
        own = self.model.state_dict()
        unknown = sorted(k for k in weights if k not in own)
        wrong = sorted(k for k in weights if k in own and weights[k].shape != own[k].shape)
        if unknown or wrong:
            raise TrainError(f"--init-from {path}: its network does not fit this one (unknown parameters "
                             f"{unknown[:5]}, other shapes {wrong[:5]}); drop --widths/--patch/--emb-dim")
        fresh = sorted(k for k in own if k not in weights)
        self.model.load_state_dict(weights, strict=False)
        self.ema.load_state_dict(self.model.state_dict())
        if self.rank == 0:
            subs = [n for n in new if "/" in n and n.split("/", 1)[0] in src.categories]
            plain = [n for n in new if n not in subs]
            print(f"initialised from {path} (step {src.step}); categories kept: {', '.join(kept) or 'none'}; "
                  f"new ({INIT_WORDS[self.cfg.new_category_init]}): {', '.join(plain) or 'none'}"
                  f"{'; sub-categories (from their parent): ' + ', '.join(subs) if subs else ''}"
                  f"{'; new parameters: ' + ', '.join(fresh) if fresh else ''}", flush=True)

    # ---- one step ----------------------------------------------------
    def batch(self):
        cfg, g, dev = self.cfg, self.gen, self.device
        b = cfg.batch // self.world
        idx = torch.multinomial(self.sample_w, b, replacement=True, generator=g)
        x0 = self.images[idx].float() / 127.5 - 1.0
        if cfg.flip:
            flip = torch.rand(b, generator=g, device=dev) < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        ctx = F.one_hot(self.labels[idx], len(self.categories)).float()
        drop = torch.rand(b, generator=g, device=dev) < cfg.cond_drop
        if cfg.mix_prob > 0:
            x0, ctx = self.mix(x0, ctx, ~drop)
        ctx = ctx * (~drop).float()[:, None]
        t = torch.randint(1, cfg.schedule.T + 1, (b,), generator=g, device=dev)
        noise = torch.randn(x0.shape, generator=g, device=dev)
        return x0, ctx, t, noise

    def mix(self, x0: torch.Tensor, ctx: torch.Tensor, eligible: torch.Tensor):
        """Category mixtures: for a `mix_prob` share of the eligible rows, a sprite from another category
        (drawn like any sprite) is put over the row, by `mix_style` (sdtrain.mixing); only
        its opaque pixels cover the row, and the context weights are the two parts' shares of the
        composite's opaque pixels."""
        cfg, g, dev = self.cfg, self.gen, self.device
        b = x0.shape[0]
        pick = (torch.rand(b, generator=g, device=dev) < cfg.mix_prob) & eligible
        idx = torch.multinomial(self.sample_w, b, replacement=True, generator=g)
        partner = self.images[idx].float() / 127.5 - 1.0
        layer, box = MIX_STYLES[cfg.mix_style](partner, g)
        other = self.labels[idx]
        pick &= other != ctx.argmax(dim=1)
        if not pick.any():
            return x0, ctx
        x0, share = put_over(x0, layer, box & pick.view(-1, 1, 1))
        ctx = ctx * (1 - share)[:, None] + F.one_hot(other, ctx.shape[1]).float() * share[:, None]
        return x0, ctx

    def target(self, xt: torch.Tensor, t: torch.Tensor, ctx: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the network learns to predict: the sampled noise, or the teacher's guided prediction."""
        if self.teacher is None:
            return noise
        return self.teacher.guided_eps(xt, t.float(), ctx, self.cfg.teacher_guidance).float()

    def train_step(self) -> float:
        cfg = self.cfg
        x0, ctx, t, noise = self.batch()
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        target = self.target(xt, t, ctx, noise)
        for grp in self.opt.param_groups:
            grp["lr"] = lr_at(cfg, self.step)
        use_amp = cfg.amp and self.device.type == "cuda"
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            pred = self.net(xt, t.float(), ctx)
        per = ((pred.float() - target) ** 2).mean(dim=(1, 2, 3))
        if cfg.min_snr_gamma > 0:
            snr = self.alpha_bar[t] / (1 - self.alpha_bar[t])
            per = per * (snr.clamp(max=cfg.min_snr_gamma) / snr)
        loss = per.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        decay = min(cfg.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            ema_p = list(self.ema.parameters())
            torch._foreach_mul_(ema_p, decay)
            torch._foreach_add_(ema_p, [p.detach() for p in self.model.parameters()], alpha=1 - decay)
        self.step += 1
        self.images_seen += cfg.batch
        return loss.detach()

    # ---- outputs -----------------------------------------------------
    def sample_grid(self, path: Path, per_row: int = 8, steps: int = 25) -> None:
        k = len(self.categories)
        ctx = torch.eye(k, device=self.device).repeat_interleave(per_row, dim=0)
        g = torch.Generator(device=self.device)
        g.manual_seed(1234)
        x = sample(self.ema, self.schedule, ctx, self.cfg.model.size, self.cfg.model.channels,
                   sampler="ddim", steps=steps, guidance=1.0, clip_x0=True, generator=g)
        save_grid(to_uint8(x), k, path, labels=self.categories)

    def write_outputs(self) -> None:
        if self.rank != 0 or self._outputs_at == self.step:
            return
        self._outputs_at = self.step
        loss_curve(self.history["step"], self.history["loss"], self.out / "loss.png",
                   title=f"loss (min-SNR weighted), {self.step} steps")
        # Rendered once, kept twice: the latest grid and one per step for comparing.
        self.sample_grid(self.out / f"samples-{self.step:06d}.png")
        shutil.copyfile(self.out / f"samples-{self.step:06d}.png", self.out / "samples.png")

    def run(self) -> None:
        cfg = self.cfg
        fwd = count_flops(self.model)
        # FLOPs per training image: forward + backward (3x forward), plus the teacher's forward
        # over the conditional and null rows when distilling.
        per_img = 3 * fwd
        if self.teacher is not None:
            per_img += (1 if cfg.teacher_guidance == 1.0 else 2) * count_flops(self.teacher.model)
        if self.rank == 0:
            if self.teacher is not None:
                print(f"distilling from {cfg.teacher} ({self.teacher.name}) at guidance {cfg.teacher_guidance}",
                      flush=True)
            trained = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
            frozen = f" ({trained / 1e6:.3f} M train, --freeze {cfg.freeze})" if cfg.freeze != "none" else ""
            print(f"model: {count_params(self.model) / 1e6:.3f} M parameters{frozen}, "
                  f"{fwd / 1e9:.3f} GFLOP per {cfg.model.size}x{cfg.model.size} forward pass", flush=True)
            print(f"data: {len(self.labels)} training sprites, {len(self.categories)} categories; "
                  f"device {self.device}"
                  f"{f' ({torch.get_num_threads()} threads{self.threads_why})' if self.device.type == 'cpu' else ''}, "
                  f"{self.world} process(es), batch {cfg.batch}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        bar = Progress(cfg.steps, "train", unit="step", start=self.step) if self.rank == 0 else None
        if bar:
            bar.rate_scale, bar.rate_unit = cfg.batch, "img"
        t_start = time.time()
        if bar and cfg.max_minutes:
            bar.deadline = t_start + cfg.max_minutes * 60
        session_start_step = self.step
        session_start_secs = self.train_seconds
        acc, acc_n = 0.0, 0
        last_loss: Optional[float] = None
        try:
            while self.step < cfg.steps and not self._stop:
                t0 = time.time()
                loss = self.train_step()
                self.train_seconds += time.time() - t0
                acc = acc + loss
                acc_n += 1
                # Reading the loss waits for the device; on a GPU, only every 25 steps.
                if self.step % 25 == 0 or self.step == cfg.steps:
                    self.history["step"].append(self.step)
                    self.history["loss"].append(float(acc) / acc_n)
                    self.history["lr"].append(lr_at(cfg, self.step - 1))
                    acc, acc_n = 0.0, 0
                    last_loss = float(loss)
                if bar:
                    bar.update(1, postfix=f"loss {last_loss:.4f}" if last_loss is not None else "")
                if cfg.max_minutes and (time.time() - t_start) / 60 >= cfg.max_minutes:
                    if self.rank == 0:
                        print(f"\nstopping: --max-minutes {cfg.max_minutes} reached at step {self.step}", flush=True)
                    self._stop = True
                if self.step % cfg.ckpt_every == 0:
                    self.save()
                if cfg.sample_every and self.step % cfg.sample_every == 0 and self.step < cfg.steps:
                    self.write_outputs()
        except KeyboardInterrupt:
            if self.rank == 0:
                print("\ninterrupted: saving checkpoint", flush=True)
        if bar:
            bar.close()
        self.save()
        self.write_outputs()
        if self.rank == 0:
            el = max(1e-9, self.train_seconds - session_start_secs)
            n = self.step - session_start_step
            ips = n * cfg.batch / el
            print(f"done: step {self.step}/{cfg.steps}, {self.images_seen} images seen; this session "
                  f"{ips:.1f} images/s, {ips * per_img / 1e9:.1f} GFLOP/s achieved ({per_img / 1e9:.2f} GFLOP per "
                  "image: 3x the forward pass, plus the teacher's when distilling)",
                  flush=True)
            (self.out / "summary.json").write_text(json.dumps({
                "step": self.step, "steps": cfg.steps, "images_seen": self.images_seen,
                "train_seconds": self.train_seconds, "images_per_s_last_session": ips,
                "gflop_per_forward": fwd / 1e9, "params": count_params(self.model),
                "device": str(self.device), "world": self.world,
                "final_loss": self.history["loss"][-1] if self.history["loss"] else None,
            }, indent=2) + "\n")


def make_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="npm run train --", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=d.data, help=f"dataset .npz from `npm run dataset` (default {d.data})")
    p.add_argument("--out", default=d.out, help="run directory for checkpoint, config, samples")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--steps", type=int, help=f"total optimizer steps (default {d.steps})")
    p.add_argument("--batch", type=int, help=f"global batch size (default {d.batch})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--warmup", type=int, help=f"warm-up steps (default {d.warmup})")
    p.add_argument("--ema-decay", type=float, help=f"EMA decay (default {d.ema_decay})")
    p.add_argument("--cond-drop", type=float, help=f"context dropout probability (default {d.cond_drop})")
    p.add_argument("--mix-prob", type=float, help="share of each batch made of two categories' sprites put "
                   "together (context split by their shares of the opaque pixels) so category mixes learn to "
                   f"show both (default {d.mix_prob})")
    p.add_argument("--mix-style", choices=("cutmix", "paste"), help="how --mix-prob puts two sprites together: "
                   "cutmix (a random box of one over the other) or paste (the whole second sprite, scaled to "
                   f"40-75%%, over the first) (default {d.mix_style})")
    p.add_argument("--min-snr-gamma", type=float, help=f"min-SNR weighting gamma, 0 = plain MSE (default {d.min_snr_gamma})")
    p.add_argument("--balance", type=float, help="class balancing: 0 natural frequencies, 1 uniform over "
                                                 f"categories (default {d.balance})")
    p.add_argument("--category-weight", action="append", metavar="NAME=FACTOR",
                   help="sample this category FACTOR times as often as --balance gives it (repeatable), "
                        "e.g. --category-weight monster=2")
    p.add_argument("--no-flip", action="store_true", help="disable horizontal flips")
    p.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    p.add_argument("--size", type=int, help=f"image size (default {d.model.size})")
    p.add_argument("--widths", help="channel widths per level, e.g. 32,64,128")
    p.add_argument("--patch", type=int, help="pixel-unshuffle stem: 2 runs the U-Net on 16x16 positions for 32px "
                                             f"sprites, about 4x fewer FLOPs (default {d.model.patch})")
    p.add_argument("--teacher", help="distil from this exported model.json (or a training checkpoint.pt): the student learns the teacher's guided "
                                     "noise prediction and samples without guidance (half the rows per step)")
    p.add_argument("--teacher-guidance", type=float,
                   help=f"guidance scale baked into the student (default {d.teacher_guidance})")
    p.add_argument("--input-skip", action="store_true",
                   help="add a zero-initialised, timestep-scaled linear path from the input to the output "
                        "(helps a --patch stem pass per-pixel noise; see sdtrain/model.py)")
    p.add_argument("--refine", type=int, metavar="WIDTH",
                   help="add a zero-initialised full-resolution refinement head of this width after a --patch "
                        "stem (two 3x3 convolutions at full resolution; see sdtrain/model.py)")
    p.add_argument("--up-conv-first", action="store_true",
                   help="run the up path's resampling convolutions before upsampling instead of after (4x fewer "
                        "FLOPs for them, same parameters; fine-tune a trained run into it with --init-from)")
    p.add_argument("--attention", type=int, metavar="HEADS",
                   help="self-attention with this many heads at the lowest resolution (8x8 for 32px sprites): "
                        "three zero-initialised blocks, so it can be added to a trained network with --init-from "
                        "(see sdtrain/model.py)")
    p.add_argument("--init-from", help="fine-tune: start from an exported model.json (e.g. models/model.json) or a "
                                       "checkpoint.pt, with its network shape and any category set (same-named "
                                       "categories keep what they learned); the fine-tune recipe becomes the default "
                                       f"({', '.join(f'--{k.replace(chr(95), chr(45))} {v}' for k, v in FINETUNE_DEFAULTS.items())})")
    p.add_argument("--new-category-init", choices=NEW_CATEGORY_INITS,
                   help="with --init-from: how a category the source lacks starts (default mean of the source's)")
    p.add_argument("--freeze", choices=tuple(FROZEN_PREFIXES),
                   help="fine-tune: leave these parameters as the source had them ('encoder': the input "
                        "convolution, down path and middle block, the default with --init-from; 'none': train every layer)")
    p.add_argument("--emb-dim", type=int, help=f"embedding width (default {d.model.emb_dim})")
    p.add_argument("--sample-every", type=int, help=f"write a sample grid every N steps (default {d.sample_every})")
    p.add_argument("--ckpt-every", type=int, help=f"checkpoint every N steps (default {d.ckpt_every})")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes")
    p.add_argument("--device", help="auto, cpu or cuda (default auto)")
    p.add_argument("--threads", type=int, help="CPU threads (default: OMP_NUM_THREADS if set, else one per core "
                                               "that other work leaves idle)")
    p.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    return p


def category_shares(counts: np.ndarray, balance: float, weights: Dict[str, float], names: Sequence[str]) -> np.ndarray:
    """Each category's share of a batch: counts^(1 - balance), times its --category-weight, normalised."""
    p = np.asarray(counts, dtype=np.float64) ** (1.0 - balance)
    for name, w in weights.items():
        p[list(names).index(name)] *= w
    return p / p.sum()


def parse_category_weights(items: Sequence[str]) -> Dict[str, float]:
    """['monster=2', 'wall=0.5'] -> {'monster': 2.0, 'wall': 0.5}; a malformed item is a TrainError."""
    out: Dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            w = float(value) if sep and name.strip() else float("nan")
        except ValueError:
            w = float("nan")
        if not w > 0 or w == float("inf"):
            raise TrainError(f"--category-weight {item!r}: give NAME=FACTOR with a positive factor, e.g. monster=2")
        out[name.strip()] = w
    return out


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    out = Path(a.out)
    if a.resume:
        cpath = out / "config.json"
        if not cpath.exists():
            raise TrainError(f"--resume: no {cpath}; start the run without --resume first")
        cfg = TrainConfig.load(cpath)
        fixed = {"data": a.data != TrainConfig().data and a.data != cfg.data, "batch": a.batch, "lr": a.lr,
                 "size": a.size, "widths": a.widths, "seed": a.seed, "patch": a.patch, "teacher": a.teacher,
                 "teacher-guidance": a.teacher_guidance, "input-skip": a.input_skip, "init-from": a.init_from,
                 "refine": a.refine, "up-conv-first": a.up_conv_first, "freeze": a.freeze,
                 "attention": a.attention, "category-weight": a.category_weight}
        bad = [k for k, v in fixed.items() if v]
        if bad:
            raise TrainError(f"--resume keeps the run's settings; cannot change {', '.join('--' + b for b in bad)}")
    else:
        cfg = TrainConfig(data=a.data, out=a.out)
    src = None
    if a.init_from and not a.resume:
        # Read before anything is written: a bad source leaves no run folder behind.
        try:
            src = load_init_source(Path(a.init_from))
        except InitSourceError as e:
            raise TrainError(str(e)) from None
        if a.size and a.size != src.model.size:
            raise TrainError(f"--init-from {a.init_from} makes {src.model.size}px sprites, not --size {a.size}; "
                             f"drop --size (build the dataset at {src.model.size}px) or train from scratch")
        cfg.model = ModelConfig.from_dict(src.model.to_dict())
        for name, value in FINETUNE_DEFAULTS.items():
            setattr(cfg, name, value)
    cfg.out = a.out
    for name in ("steps", "batch", "lr", "warmup", "ema_decay", "cond_drop", "mix_prob", "mix_style", "min_snr_gamma", "balance", "seed",
                 "sample_every", "ckpt_every", "max_minutes", "device"):
        v = getattr(a, name)
        if v is not None:
            setattr(cfg, name, v)
    if a.teacher is not None:
        cfg.teacher = a.teacher
    if a.teacher_guidance is not None:
        cfg.teacher_guidance = a.teacher_guidance
    if a.init_from:
        cfg.init_from = a.init_from
    if a.new_category_init:
        cfg.new_category_init = a.new_category_init
    if a.freeze:
        cfg.freeze = a.freeze
    if cfg.freeze != "none" and not cfg.init_from:
        raise TrainError(f"--freeze {cfg.freeze} keeps trained layers as they are: it needs --init-from (a model.json or "
                         "checkpoint to fine-tune); drop --freeze to train from scratch")
    if a.category_weight:
        cfg.category_weights = parse_category_weights(a.category_weight)
    if a.no_flip:
        cfg.flip = False
    if a.no_amp:
        cfg.amp = False
    m = cfg.model.to_dict()
    if a.size:
        m["size"] = a.size
    if a.widths:
        try:
            m["widths"] = [int(w) for w in a.widths.split(",")]
        except ValueError:
            raise TrainError(f"--widths {a.widths!r}: give integers separated by commas, e.g. 32,64,128")
    if a.emb_dim:
        m["emb_dim"] = a.emb_dim
    if a.patch:
        m["patch"] = a.patch
    if a.input_skip:
        m["input_skip"] = True
    if a.refine is not None:
        m["refine"] = a.refine
    if a.up_conv_first:
        m["up_conv_first"] = True
    if a.attention is not None:
        m["attention"] = a.attention
    cfg.model = ModelConfig.from_dict(m)
    cfg.model.validate()
    if not 0 <= cfg.mix_prob <= 1:
        raise TrainError(f"--mix-prob must be within 0..1, got {cfg.mix_prob}")
    if not 0 <= cfg.balance <= 1:
        raise TrainError(f"--balance must be within 0..1, got {cfg.balance}")
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        threads, why = choose_threads(args.threads)
        cfg = config_from_args(args)
        lock = RunLock(Path(cfg.out)) if int(os.environ.get("RANK", "0")) == 0 else nullcontext()
        with lock:
            trainer = Trainer(cfg, resume=args.resume)
            trainer.threads_why = f": {why}"
            trainer.run()
    except (TrainError, RunLockError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
