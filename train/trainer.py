"""The training loop: orchestration only (data, model, method, optimizer, checkpoints, logs).

One epoch (0-based ``epoch``)::

    warmup = epoch < cfg.method.warmup_epochs           # authors: the first 3 epochs
    for images, index, camid in loader:                 # identities are never read
        g, s = model(images)
        loss, stats, pos = method.step(index, g, s, warmup, generator)
        loss.backward(); optimizer.step()
        method.update(index, g.detach(), s.detach(), pos)   # explicit, under no_grad

Before epoch 0 the memory banks are filled by one no-grad pass over the training crops with
the model in eval mode and without augmentation (the authors ran this pass through their
augmented training loader in whatever mode the model was in; eval mode without augmentation
gives a deterministic, cleaner starting bank).

Distributed (``torchrun``, ``WORLD_SIZE > 1``): every rank trains on its shard of each batch
permutation, selects and computes its loss against the full bank, and then all ranks
all-gather (index, features, positives) so that every rank applies the same bank update and
the banks stay identical.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reid_edge.artifacts import BEST_CHECKPOINT, LAST_CHECKPOINT
from reid_edge.backends.torch_backend import TorchBackend, resolve_torch_device
from reid_edge.errors import CheckpointError, ConfigError, DataError
from reid_edge.io import atomic_open
from reid_edge.names import IMPORTED_BACKBONES

from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .config import TrainConfig, default_calib_holdout, lr_at
from .data.datasets import (
    Sample,
    check_readable,
    dataset_fingerprint,
    evaluation_split,
    read_dataset,
    split_calibration,
)
from .data.loader import build_plain_loader, build_train_loader, set_loader_epoch, worker_seed_everything
from .distributed import DistInfo, all_gather_cat, all_gather_objects, barrier, setup_distributed, teardown
from .evaluate import EvalResult, evaluate, model_card_for

CSV_COLUMNS = ("epoch", "warmup", "loss", "loss_global", "loss_local", "acc_global", "acc_local", "images_per_s",
               "lr", "seconds", "mAP", "rank1", "rank5", "rank10")


@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None


@dataclass
class PreparedData:
    train: list[Sample]
    calibration: list[Sample]
    query: list[Sample]
    gallery: list[Sample]
    fingerprint: str
    num_cameras: int


def prepare_data(cfg: TrainConfig, need_eval: bool = True) -> PreparedData:
    """Read the dataset, drop unreadable crops, hold the calibration crops aside, check cameras.

    Raises:
        DataError: no data, unreadable images, or one camera only while ``lambda_c > 0``.
    """
    if not cfg.data:
        raise ConfigError("no training data given (--data DIR)")
    data = read_dataset(cfg.data, cfg.format, cfg.cuhk03_variant)
    if not data.train:
        raise DataError(f"{cfg.data} has no training images (a test split only: no bounding_box_train/)")
    samples = check_readable(data.train)
    if len(samples) < cfg.batch_size:
        raise DataError(f"only {len(samples)} training images in {cfg.data}; need at least batch_size={cfg.batch_size}")
    fingerprint = dataset_fingerprint(samples, data.root)
    holdout = default_calib_holdout(len(samples)) if cfg.calib_holdout is None else cfg.calib_holdout
    train, calib = split_calibration(samples, holdout, cfg.seed)
    if len(train) < cfg.batch_size:
        raise DataError(f"after holding {holdout} calibration images aside only {len(train)} remain to train on")
    cams = sorted({s.camid for s in train})
    if len(cams) < 2 and cfg.method.lambda_c > 0:
        raise DataError(
            f"the training data has one camera only (camera {cams[0]}), so cross-camera encouragement is "
            "impossible; train with a config file holding 'method: {lambda_c: 0.0}' (--config FILE)"
        )
    query: list[Sample] = []
    gallery: list[Sample] = []
    split = evaluation_split(data) if need_eval else None
    if split is not None:
        query = check_readable(split[0])
        gallery = query if split[1] is split[0] else check_readable(split[1])
    return PreparedData(train, calib, query, gallery, fingerprint, len(cams))


def _autocast(device: torch.device, enabled: bool, dtype: torch.dtype) -> Any:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _default_log(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(message)


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.3f}  pos-acc {task.fields[acc]:.2f}  "
                               "{task.fields[ips]:.0f} img/s"),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled, transient=False)


def _write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    from reid_edge.io import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_COLUMNS})
    atomic_write_text(path, buf.getvalue())


@torch.no_grad()
def init_banks(model: torch.nn.Module, method: Any, samples: list[Sample], cfg: TrainConfig, device: torch.device,
               dist_info: DistInfo) -> None:
    """Fill the memory banks with one no-grad pass (eval mode, no augmentation; see module doc)."""
    was_training = model.training
    model.eval()
    loader = build_plain_loader(samples, height=cfg.height, width=cfg.width, batch_size=cfg.eval_batch_size,
                                workers=cfg.workers, rank=dist_info.rank, world_size=dist_info.world_size)
    idx_parts, g_parts, s_parts = [], [], []
    for images, index, _cam in loader:
        g, s = model(images.to(device))
        idx_parts.append(index.to(device))
        g_parts.append(g.float())
        s_parts.append(s.float())
    if idx_parts:
        idx_t, g_t, s_t = torch.cat(idx_parts), torch.cat(g_parts), torch.cat(s_parts)
    else:  # more ranks than crops
        c: Any = model.config
        idx_t = torch.zeros(0, dtype=torch.long, device=device)
        g_t = torch.zeros(0, c.embed_dim, device=device)
        s_t = torch.zeros(0, c.num_stripes, c.stripe_dim, device=device)
    idx_t = all_gather_cat(idx_t, dist_info.world_size)
    g_t = all_gather_cat(g_t, dist_info.world_size)
    s_t = all_gather_cat(s_t, dist_info.world_size)
    method.init_banks(idx_t, g_t, s_t)
    model.train(was_training)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


class Trainer:
    """Builds everything from a :class:`TrainConfig` and runs the epochs; see :func:`train`."""

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, log: Callable[[str], None] | None = None,
                 show_progress: bool = True) -> None:
        from .method import SelectiveContrastive
        from .models import build_model

        self.cfg = cfg
        self.run_dir = Path(cfg.out)
        self.device = torch.device(resolve_torch_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0))))
        self.dist = setup_distributed(self.device.type)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.log_fn = log or _default_log
        self.show_progress = show_progress and self.dist.is_main
        last = self.run_dir / LAST_CHECKPOINT
        if not resume and last.exists():
            raise CheckpointError(f"{self.run_dir} already holds a run ({last}); pass --resume to continue it, "
                                  "or choose another --out")
        if resume and not last.is_file():
            raise CheckpointError(f"nothing to resume: {last} does not exist")

        worker_seed_everything(cfg.seed)
        self.data = prepare_data(cfg, need_eval=cfg.eval_every > 0)
        self.log(f"data: {len(self.data.train)} training crops from {self.data.num_cameras} cameras "
                 f"({len(self.data.calibration)} held aside for INT8 calibration)"
                 + (f"; evaluation on {len(self.data.query)} query / {len(self.data.gallery)} gallery"
                    if self.data.query else "; no query/gallery split: no evaluation"))

        self.model = build_model(cfg.backbone, cfg.num_stripes, cfg.embed_dim, cfg.last_stride,
                                 pretrained=None if resume else cfg.pretrained, whole=cfg.pretrained_whole)
        if cfg.backbone in IMPORTED_BACKBONES:
            if not resume:
                self.log(f"starting from the packaged {cfg.backbone} (its weights and head; new stripe heads)")
        elif cfg.pretrained is None:
            self.log("random initialization (no pretrained weights; pass --pretrained imagenet or a file)")
        elif not resume and cfg.pretrained_whole:
            self.log(f"starting from the whole model of {cfg.pretrained} (its backbone and heads)")
        elif not resume:
            summary = getattr(getattr(self.model, "pretrained_report", None), "summary", None)
            self.log(f"pretrained backbone: {summary() if summary is not None else cfg.pretrained}")
        self.card = model_card_for(self.model, cfg.height, cfg.width, cfg.method.lambda_g,
                                   lambda_c=cfg.method.lambda_c)

        cameras = torch.tensor([s.camid for s in self.data.train], dtype=torch.long)
        groups = self._groups() if cfg.tracklet_positives else None
        self.method = SelectiveContrastive(len(self.data.train), cfg.embed_dim, cfg.num_stripes, cameras, cfg.method,
                                           groups=groups)
        self.model.to(self.device)
        self.method.to(self.device)
        self.use_channels_last = cfg.channels_last and self.device.type == "cuda"
        if self.use_channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in the stubs
        self.amp = cfg.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = (torch.amp.GradScaler("cuda") if self.amp and self.amp_dtype == torch.float16 else None)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        self.net: torch.nn.Module = self.model
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self.net = torch.compile(self.net)  # type: ignore[assignment]
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed * 7919 + self.dist.rank)
        self.loader = build_train_loader(self.data.train, height=cfg.height, width=cfg.width,
                                         batch_size=cfg.batch_size, workers=cfg.workers, seed=cfg.seed,
                                         rank=self.dist.rank, world_size=self.dist.world_size,
                                         pin_memory=self.device.type == "cuda")
        self.start_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_metric: float | None = None
        if resume:
            self._resume(last)
        else:
            t0 = time.time()
            init_banks(self.model, self.method, self.data.train, cfg, self.device, self.dist)
            self.log(f"memory banks initialized in {time.time() - t0:.1f} s")
            if self.dist.is_main:
                self.run_dir.mkdir(parents=True, exist_ok=True)

    def log(self, message: str) -> None:
        if self.dist.is_main:
            self.log_fn(message)

    def _groups(self) -> torch.Tensor:
        tracks = [s.tracklet for s in self.data.train]
        if not any(t >= 0 for t in tracks):
            raise ConfigError("--tracklet-positives needs tracklet ids: unlabeled data with a manifest.csv "
                              "(path,camera,tracklet,frame) as written by reid-edge harvest")
        # crops without a tracklet get their own singleton group
        next_id = max(tracks) + 1
        out = []
        for t in tracks:
            if t < 0:
                t, next_id = next_id, next_id + 1
            out.append(t)
        return torch.tensor(out, dtype=torch.long)

    def _resume(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location="cpu")
        if ckpt.get("dataset_fingerprint") != self.data.fingerprint:
            raise CheckpointError(f"{path} was trained on different data (dataset fingerprint differs); "
                                  "resume with the same --data, or start a new run with another --out")
        mine = dataclasses.asdict(self.model.config)
        if dict(ckpt["model_config"]) != mine:
            raise CheckpointError(f"{path} holds model {ckpt['model_config']}, not {mine}")
        self.model.load_state_dict(ckpt["model"], strict=True)
        try:
            self.method.load_state_dict(ckpt["method"], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: memory banks do not fit this data ({str(exc).splitlines()[0]})") from None
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng_state(ckpt["rng"], None)
        gen_state = ckpt["rng"].get("generators", [])
        if self.dist.rank < len(gen_state):
            self.generator.set_state(gen_state[self.dist.rank])
        self.start_epoch = int(ckpt["epoch"])
        self.history = list(ckpt.get("history", []))
        self.best_metric = ckpt.get("best_metric")
        self.log(f"resumed {path} after epoch {self.start_epoch}")

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        set_loader_epoch(self.loader, epoch)
        for images, index, cams in self.loader:
            images = images.to(self.device, non_blocking=True)
            if self.use_channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, index.to(self.device), cams

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training crops; returns the epoch's mean statistics."""
        cfg = self.cfg
        warmup = cfg.method.in_warmup(epoch)
        for group in self.optimizer.param_groups:  # set each epoch: a resumed run follows the schedule too
            group["lr"] = lr_at(cfg, epoch)
        self.net.train()
        stats_acc: dict[str, list[float]] = {"loss": []}
        seen = 0
        t0 = time.time()
        with _progress(self.show_progress) as bar:
            task = bar.add_task("train", total=len(self.loader), epoch=epoch + 1, loss=0.0, acc=0.0, ips=0.0)
            for images, index, _cams in self._batches(epoch):
                with _autocast(self.device, self.amp, self.amp_dtype):
                    g, s = self.net(images)
                g, s = g.float(), s.float()
                loss, stats, pos = self.method.step(index, g, s, warmup, self.generator)
                loss_value = float(loss.item())  # the step's one host sync for the loss
                if not math.isfinite(loss_value):
                    raise DataError(f"the loss became {loss_value} at epoch {epoch + 1}; lower the learning rate")
                self.optimizer.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    loss.backward()
                    self.optimizer.step()
                self._update_banks(index, g.detach(), s.detach(), pos)
                stats_acc["loss"].append(loss_value)
                for k, v in stats.items():
                    stats_acc.setdefault(k, []).append(float(v))
                seen += images.shape[0] * self.dist.world_size
                ips = seen / max(time.time() - t0, 1e-9)
                acc = stats.get("acc_global", float("nan"))
                bar.update(task, advance=1, loss=loss_value, acc=float(acc), ips=ips)
        seconds = time.time() - t0
        row: dict[str, Any] = {k: _mean(v) for k, v in stats_acc.items()}
        row.update(epoch=epoch + 1, warmup=warmup, images_per_s=seen / max(seconds, 1e-9),
                   lr=self.optimizer.param_groups[0]["lr"], seconds=seconds,
                   mAP=None, rank1=None, rank5=None, rank10=None)
        return row

    def _update_banks(self, index: torch.Tensor, g: torch.Tensor, s: torch.Tensor, pos: torch.Tensor) -> None:
        """Bank update with every rank's batch, so that all ranks keep identical banks."""
        ws = self.dist.world_size
        if ws > 1:
            index, g, s, pos = (all_gather_cat(t, ws) for t in (index, g, s, pos))
            # DistributedSampler pads the last shard with repeats: keep each crop's first copy
            _, first = np.unique(index.cpu().numpy(), return_index=True)
            if len(first) < index.shape[0]:
                keep = torch.as_tensor(np.sort(first), device=index.device)
                index, g, s, pos = index[keep], g[keep], s[keep], pos[keep]
        self.method.update(index, g, s, pos)

    def evaluate(self) -> EvalResult:
        """mAP/CMC of the current model on the query/gallery split (main rank)."""
        backend = TorchBackend.from_model(self.model, self.card, self.device)
        return evaluate(backend, self.data.query, self.data.gallery, batch_size=self.cfg.eval_batch_size,
                        distance=self.cfg.eval_distance, lambda_g=self.cfg.method.lambda_g,
                        lambda_c=self.cfg.method.lambda_c)

    def _rng_state(self) -> dict[str, Any]:
        state = capture_rng_state(None)
        state["generators"] = all_gather_objects(self.generator.get_state(), self.dist.world_size)
        return state

    def save(self, path: Path, epoch_done: int, metrics: dict[str, Any], rng: dict[str, Any]) -> None:
        save_checkpoint(path, model=self.model, method=self.method, optimizer=self.optimizer, epoch=epoch_done,
                        config=self.cfg, dataset_fingerprint=self.data.fingerprint, rng_state=rng,
                        calibration_images=[s.path for s in self.data.calibration], card=self.card,
                        metrics=metrics, best_metric=self.best_metric, history=self.history, scaler=self.scaler)

    def run(self, on_epoch: Callable[[list[dict[str, Any]]], None] | None = None) -> TrainResult:
        """Train from ``start_epoch`` to ``cfg.epochs``; checkpoint every epoch.

        ``on_epoch`` (main rank only) is called with the history after each epoch's checkpoint and
        ``log.csv`` are written, so whatever it records survives an interruption too.
        """
        cfg = self.cfg
        writer = self._tensorboard()
        last, best = self.run_dir / LAST_CHECKPOINT, self.run_dir / BEST_CHECKPOINT
        if self.start_epoch >= cfg.epochs:
            self.log(f"nothing to do: {self.start_epoch} of {cfg.epochs} epochs already done")
        for epoch in range(self.start_epoch, cfg.epochs):
            row = self.train_epoch(epoch)
            done = epoch + 1
            should_eval = bool(self.data.query) and cfg.eval_every > 0 and (done % cfg.eval_every == 0
                                                                            or done == cfg.epochs)
            improved = False
            if should_eval and self.dist.is_main:
                t_eval = time.time()
                res = self.evaluate()
                row.update(mAP=res.mAP, rank1=res.rank(1), rank5=res.rank(5), rank10=res.rank(10),
                           eval_seconds=time.time() - t_eval)
                if self.best_metric is None or res.mAP > self.best_metric:
                    self.best_metric, improved = res.mAP, True
            rng = self._rng_state()  # every rank takes part in the gather; only the main rank writes
            self.history.append(row)
            if self.dist.is_main:
                self.save(last, done, row, rng)
                if improved:  # the same content: copy the bytes instead of serialising the banks again
                    with last.open("rb") as src, atomic_open(best, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                _write_csv(self.run_dir / "log.csv", self.history)
                if on_epoch is not None:
                    on_epoch(self.history)
                if writer is not None:
                    for k in ("loss", "loss_global", "loss_local", "acc_global", "acc_local", "images_per_s",
                              "mAP", "rank1"):
                        v = row.get(k)
                        if v is not None and not (isinstance(v, float) and math.isnan(v)):
                            writer.add_scalar(f"train/{k}" if k not in ("mAP", "rank1") else f"eval/{k}", v, done)
            self.log(self._summary(row))
            barrier(self.dist.world_size)
        if self.dist.is_main and self.history:
            from .plots import plot_curves

            plot_curves(self.history, self.run_dir / "curves.png")
        if writer is not None:
            writer.close()
        return TrainResult(self.run_dir, last, best if best.exists() else None, self.history, self.best_metric)

    def _summary(self, row: dict[str, Any]) -> str:
        text = (f"epoch {row['epoch']}/{self.cfg.epochs}{' (warm-up)' if row['warmup'] else ''}: "
                f"loss {row['loss']:.4f}, pos-acc global {row.get('acc_global', float('nan')):.3f} "
                f"local {row.get('acc_local', float('nan')):.3f}, {row['images_per_s']:.0f} img/s")
        if row.get("mAP") is not None:
            text += f" | mAP {100 * row['mAP']:.1f}%, rank-1 {100 * row['rank1']:.1f}%"
        return text

    def _tensorboard(self) -> Any:
        if not self.dist.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    def close(self) -> None:
        teardown(self.dist)


def train(cfg: TrainConfig, *, resume: bool = False, log: Callable[[str], None] | None = None,
          show_progress: bool = True) -> TrainResult:
    """Train the selective contrastive model as ``cfg`` says (resume from ``cfg.out/last.pt``).

    Raises:
        ConfigError, DataError, CheckpointError: bad settings, data or run folder.
    """
    trainer = Trainer(cfg, resume=resume, log=log, show_progress=show_progress)
    try:
        return trainer.run()
    finally:
        trainer.close()
