"""Train the reference model on the training split and write Lightning checkpoints like the reproduction does.

A run directory holds `astroclip-epoch=NN-min.ckpt` files (ModelCheckpoint monitoring `val/loss`, mode min),
the last epoch's `astroclip-epoch=NN-last.ckpt`, and `metrics.csv` with per-epoch losses.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, Dataset

from astroclip_eval.io.data import Survey
from astroclip_eval.models.reference import ReferenceAstroCLIP
from astroclip_eval.tasks.valid import valid_mask

log = logging.getLogger(__name__)


HOLDOUT_FRACTION = 0.1  # of the training split, for val/loss (the validation split stays unseen)
SAVE_TOP_K = 2  # '-min' checkpoints kept, as a user who keeps an earlier one would have


@dataclass(frozen=True)
class TrainConfig:
    """A training run's settings, filled from the validated config (`train` and the model's `train` entry): the
    defaults live in the config schema alone."""

    embedding_dim: int
    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    image_crop: int
    seed: int
    spectrum_view_weight: float
    z_min: float  # the valid-row filter (config `valid`): training sees valid pairs only
    z_max: float


class PairDataset(Dataset):
    """In-memory (image, spectrum, redshift) rows; images are stored already centre-cropped."""

    def __init__(self, images: np.ndarray, spectra: np.ndarray, redshifts: np.ndarray):
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.spectra = torch.from_numpy(np.ascontiguousarray(spectra))
        self.redshifts = torch.from_numpy(np.ascontiguousarray(redshifts))

    def __len__(self) -> int:
        return self.redshifts.shape[0]

    def __getitems__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        i = torch.as_tensor(idx)
        return {"images": self.images[i], "spectra": self.spectra[i], "redshifts": self.redshifts[i]}


class ReferenceTraining(ReferenceAstroCLIP, pl.LightningModule):
    """The reference model as Lightning trains it: its CLIP loss as the training and validation steps, AdamW with a
    cosine schedule, and its settings saved as the checkpoint's `hyper_parameters` (what `build` reads back)."""

    def __init__(self, **settings: object):
        super().__init__(**settings)
        self.save_hyperparameters(self.settings)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        loss = self.clip_loss(batch, augment=True)
        if loss is not None:
            self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=batch["redshifts"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss = self.clip_loss(batch, augment=False)
        if loss is not None:
            self.log("val/loss", loss, on_epoch=True, batch_size=batch["redshifts"].shape[0])

    def configure_optimizers(self) -> dict[str, object]:
        opt = torch.optim.AdamW(self.parameters(), lr=self.settings["lr"], weight_decay=self.settings["weight_decay"])
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(self.settings["max_epochs"]), 1))
        return {"optimizer": opt, "lr_scheduler": sched}


def _identity(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


class EpochLog(pl.Callback):
    """One log line per epoch (epoch, train loss, val loss, seconds), so a long GPU job shows its progress."""

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        losses = [f"{float(metrics[k]):.4f}" if k in metrics else "n/a" for k in ("train/loss", "val/loss")]
        log.info("epoch %d/%d: train/loss %s, val/loss %s, %.1f s", trainer.current_epoch + 1, trainer.max_epochs,
                 *losses, time.perf_counter() - self.started)


def train(dataset_path: str | os.PathLike, run_dir: str | os.PathLike, cfg: TrainConfig) -> Path:
    """Train one model; return the run directory."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with Survey(dataset_path) as survey:
        images = survey.read("train", "images", crop=cfg.image_crop)
        spectra = survey.read("train", "spectra")
        redshifts = survey.read("train", "redshifts")
    keep = valid_mask(spectra, redshifts, cfg.z_min, cfg.z_max)  # once, not per batch on the device
    images, spectra, redshifts = images[keep], spectra[keep], redshifts[keep]
    n = redshifts.shape[0]
    order = np.random.default_rng(cfg.seed).permutation(n)
    n_hold = max(int(HOLDOUT_FRACTION * n), 1)
    hold, fit = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    log.info("training on %d valid rows (%d invalid left out), %d held out for val/loss", fit.size, int((~keep).sum()), hold.size)

    model = ReferenceTraining(
        embedding_dim=cfg.embedding_dim,
        image_crop=cfg.image_crop,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        max_epochs=cfg.max_epochs,
        spectrum_view_weight=cfg.spectrum_view_weight,
    )
    sample = fit[:2048]
    model.fit_normalisation(torch.from_numpy(images[sample]), torch.from_numpy(spectra[sample]))

    train_dl = DataLoader(
        PairDataset(images[fit], spectra[fit], redshifts[fit]),
        batch_size=cfg.batch_size, shuffle=True, drop_last=True, collate_fn=_identity,
    )
    val_dl = DataLoader(
        PairDataset(images[hold], spectra[hold], redshifts[hold]), batch_size=cfg.batch_size, collate_fn=_identity
    )
    best = ModelCheckpoint(
        dirpath=run_dir,
        filename="astroclip-{epoch:02d}-min",
        monitor="val/loss",
        mode="min",
        save_top_k=SAVE_TOP_K,
    )
    # Lightning's save_last only fires on epochs that also saved a top-k file; a monitor-less callback keeping
    # one file gives the true last epoch.
    last = ModelCheckpoint(dirpath=run_dir, filename="astroclip-{epoch:02d}-last", save_top_k=1)
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs,
        accelerator="auto",
        devices=1,
        callbacks=[best, last, EpochLog()],
        logger=CSVLogger(save_dir=run_dir, name="", version=""),
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        log_every_n_steps=1,
    )
    trainer.fit(model, train_dl, val_dl)
    log.info("best val/loss %.4f at %s", float(best.best_model_score), best.best_model_path)
    return run_dir
