"""One trainer for every model: Adam, early stopping, best weights, per-epoch history, resume.

Early stopping and the choice of best weights use the validation objective at the schedule's
*target* beta, so epochs stay comparable while a cyclical schedule moves beta up and down.
Validation decodes the posterior mean, so the figures are deterministic.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..collapse import active_units
from ..data.batches import BatchSource, as_batch_source
from ..errors import VaelabError, check, check_finite
from ..io import atomic_path
from ..losses import LossTerms, VAELoss
from ..models.base import VAEBase
from .inference import EVAL_BATCH_SIZE, as_tensor, posterior_outputs

log = logging.getLogger(__name__)

PROGRESS = ("bar", "log", "none")  # a tqdm bar over epochs, one log line per epoch, or silence


class TrainingDiverged(VaelabError):
    """The loss became NaN or Inf; carries the epoch and the history so far."""

    def __init__(self, message: str, epoch: int, history: list[dict]):
        super().__init__(message)
        self.epoch = epoch
        self.history = history


class TrainingInterrupted(Exception):
    """Training stopped on request (a signal) at a batch boundary; the state to resume from is written."""

    def __init__(self, epoch: int, batches_done: int):
        super().__init__(f"training interrupted at epoch {epoch}, after batch {batches_done}")
        self.epoch = epoch
        self.batches_done = batches_done


class TrainingPruned(Exception):
    """An ``on_epoch`` judge stopped a hopeless run (a sweep's pruner); carries the epoch, the reason
    and the history so far. The run's weights are its best so far, as after early stopping."""

    def __init__(self, epoch: int, reason: str, history: list[dict] | None = None):
        super().__init__(f"pruned at epoch {epoch}: {reason}")
        self.epoch = epoch
        self.reason = reason
        self.history = history or []


@dataclass
class TrainConfig:
    """The trainer's settings (Hydra: ``trainer``); the run's seed is the experiment's own ``seed``."""

    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 30  # epochs without a better validation objective before stopping
    threads: int | None = None  # torch intra-op threads; None: default_threads() (half the cores, at most 4)
    resume: bool = True  # continue from the run directory's train_state.pt when it exists (same config)
    keep_state: bool = True  # keep train_state.pt after a finished run (sweep presets drop it: MBs per trial)
    device: str = "cpu"  # cpu | cuda | cuda:N (refused with one line when CUDA is unavailable)
    # share of the GPU's memory this process may allocate (several trials on one GPU); None: no cap
    cuda_memory_fraction: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            check(getattr(self, name) >= 1, f"trainer.{name}", f"must be >= 1, got {getattr(self, name)}")
        check(self.lr > 0, "trainer.lr", f"must be > 0, got {self.lr}")
        check(self.threads is None or self.threads >= 1, "trainer.threads", f"must be >= 1 or null, got {self.threads}")
        fraction = self.cuda_memory_fraction
        check(fraction is None or 0 < fraction <= 1, "trainer.cuda_memory_fraction", f"must be in (0, 1] or null, got {fraction}")
        resolve_device(self.device)
        check_finite(self, "trainer")


MAX_DEFAULT_THREADS = 4


def default_threads() -> int:
    """The torch threads of a run that sets none: half the cores this process may run on (its
    affinity: a SLURM job's or container's share), at most MAX_DEFAULT_THREADS. A pool over every
    core waits at each op for its slowest thread, so on a machine that other processes share, one
    descheduled thread stalls the run (benchmarks/threads.py; README "Performance")."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_THREADS, cores // 2))


def resolve_device(name: str) -> torch.device:
    """A torch device by name, refusing CUDA on a machine without it (one clear line)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VaelabError(f"trainer.device: {name!r} is not a device (use cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VaelabError(f"trainer.device={name}: no CUDA device is available here (torch {torch.__version__}); use trainer.device=cpu")
    if device.type not in ("cpu", "cuda"):
        raise VaelabError(f"trainer.device: {name!r} is not supported (use cpu or cuda)")
    return device


@dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int
    epochs_trained: int
    seconds: float
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)
    best_loss: float = float("nan")  # the best epoch's validation objective


def seed_everything(seed: int) -> None:
    """Seed torch (weights, dropout, sampling) before a model is built, so a run is reproducible."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def _targets(batch, device):
    return None if batch.targets is None else batch.targets.to(device)


@torch.no_grad()
def evaluate(
    model: VAEBase, loss_fn: VAELoss, x: np.ndarray | BatchSource, mask: np.ndarray | None = None, batch_size: int = EVAL_BATCH_SIZE
) -> dict:
    """Validation figures at the target beta, decoding the posterior mean (arrays or a batch source)."""
    device = next(model.parameters()).device
    sums = dict.fromkeys(EPOCH_FIGURES, 0.0)
    mus = []
    source = as_batch_source(x, mask)
    for batch, output in posterior_outputs(model, source, batch_size):
        xb, mb = as_tensor(batch[0], device), as_tensor(batch[1], device)
        t = loss_fn.objective(output, xb, mb, loss_fn.target_beta, _targets(batch, device))
        _add(sums, t, len(xb))
        mus.append(output.mu.cpu().numpy())
    figures = {k: v / len(source) for k, v in sums.items()}
    figures["active_units"] = active_units(np.concatenate(mus))
    return figures


EPOCH_FIGURES = ("loss", "recon", "kl", "kl_clamped")


def _add(sums: dict, t: LossTerms, n: int) -> None:
    for key, value in zip(EPOCH_FIGURES, (t.total, t.recon, t.kl, t.kl_clamped)):
        sums[key] += value.item() * n


def _state(fingerprint, model, optimizer, best_state, best_loss, best_epoch, history, stopped_early, started, rng) -> dict:
    """Everything a resumed run needs to go on exactly as an uninterrupted one."""
    return {
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best_model": best_state,
        "best_loss": best_loss,
        "best_epoch": best_epoch,
        "history": history,
        "stopped_early": stopped_early,
        "seconds": time.perf_counter() - started,
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": rng.bit_generator.state,
    }


def _save_state(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_state(path: Path, fingerprint: str) -> dict | None:
    """The saved training state at ``path`` if it belongs to this configuration, else an error."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
        raise VaelabError(
            f"{path}: cannot resume from this training state ({str(exc).splitlines()[0]}); delete it or set trainer.resume=false"
        ) from None
    if state.get("fingerprint") != fingerprint:
        raise VaelabError(f"{path}: written by a different configuration; use another output directory or trainer.resume=false")
    return state


def train(
    model: VAEBase,
    loss_fn: VAELoss,
    x_train: np.ndarray | BatchSource,
    mask_train: np.ndarray | None,
    x_val: np.ndarray | BatchSource,
    mask_val: np.ndarray | None,
    config: TrainConfig | None = None,
    *,
    seed: int = 0,
    progress: str = "none",
    state_path: Path | None = None,
    fingerprint: str = "",
    stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[list[dict]], None] | None = None,
) -> TrainResult:
    """Train in place; the model ends with its best validation weights.

    Inputs are normalized (N, T, V) arrays with 0 where unobserved, and their masks; or, for data
    larger than memory, batch sources (``data.batches.BatchSource``, e.g. a streamed Layer-2 file)
    in place of ``x_train`` / ``x_val`` with the masks None. Both read the same ``rng`` the same way,
    so arrays train exactly as before. Raises TrainingDiverged as soon as a training loss is NaN or Inf.

    With ``state_path``, the whole training state (weights, best weights, Adam, history, early
    stopping, torch and numpy random states) is written there atomically after every epoch, and
    an existing state with the same ``fingerprint`` is continued: a run killed mid-training and
    resumed ends exactly as an uninterrupted one (deterministic on CPU). When ``stop()`` turns true
    (a preemption signal), training stops after the current batch, writes the state of the epoch in
    progress (weights, Adam, the epoch's batch order and the batches done) and raises
    TrainingInterrupted; resuming continues with the next batch, to the same result.

    ``progress``: a tqdm bar over epochs (``bar``), one INFO log line per epoch (``log``: what a
    batch system's log file or a Python caller wants), or nothing (``none``).

    ``on_epoch(history)`` sees the history after each epoch (its state written); it may raise
    TrainingPruned, which ends training with the best weights so far loaded into the model.
    """
    config = config or TrainConfig()
    if progress not in PROGRESS:
        raise ValueError(f"progress must be one of {PROGRESS}, got {progress!r}")
    torch.set_num_threads(config.threads or default_threads())
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = resolve_device(config.device)
    if device.type == "cuda" and config.cuda_memory_fraction is not None:
        torch.cuda.set_per_process_memory_fraction(config.cuda_memory_fraction, device)
    model.to(device)
    train_source, val_source = as_batch_source(x_train, mask_train), as_batch_source(x_val, mask_val)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    history: list[dict] = []
    best_loss, best_epoch, best_state = float("inf"), 0, copy.deepcopy(model.state_dict())
    stopped_early, first_epoch, seconds_before = False, 0, 0.0
    saved = _load_state(state_path, fingerprint) if state_path is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        best_state, best_loss, best_epoch = saved["best_model"], saved["best_loss"], saved["best_epoch"]
        history, stopped_early, seconds_before = saved["history"], saved["stopped_early"], saved["seconds"]
        torch.set_rng_state(saved["torch_rng"])
        rng.bit_generator.state = saved["numpy_rng"]
        first_epoch = len(history)
        log.info("resuming from %s after epoch %d of %d", state_path, first_epoch, config.epochs)
    partial = saved.get("partial") if saved is not None else None  # an epoch interrupted mid-way
    started = time.perf_counter() - seconds_before
    bar = tqdm(
        range(first_epoch, config.epochs),
        desc="training",
        unit="epoch",
        disable=progress != "bar",
        leave=False,
        initial=first_epoch,
        total=config.epochs,
    )
    for epoch in [] if stopped_early else bar:
        epoch_start = time.perf_counter()
        beta = loss_fn.get_beta(epoch)
        model.train()
        sums, seen, skip = dict.fromkeys(EPOCH_FIGURES, 0.0), 0, 0
        if partial is not None:  # replay the interrupted epoch's batch order, skipping the batches done
            rng.bit_generator.state = partial["epoch_rng"]
            sums, seen, skip = partial["sums"], partial["seen"], partial["batches_done"]
            epoch_start -= partial["seconds"]
            partial = None
        epoch_rng = rng.bit_generator.state
        for k, batch in enumerate(train_source.batches(config.batch_size, rng)):
            if k < skip:
                continue
            if k == skip and skip:
                torch.set_rng_state(saved["torch_rng"])  # dropout and sampling go on where they stopped
            if len(batch[0]) < 2 and len(train_source) >= 2:
                continue  # BatchNorm cannot train on a batch of one
            xb, mb = as_tensor(batch[0], device), as_tensor(batch[1], device)
            t = loss_fn.objective(model.forward_output(xb, mb), xb, mb, beta, _targets(batch, device))
            if not torch.isfinite(t.total):
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch}: loss is {t.total.item()} (try a smaller trainer.lr)", epoch, history
                )
            optimizer.zero_grad(set_to_none=True)
            t.total.backward()
            optimizer.step()
            n = len(xb)
            seen += n
            _add(sums, t, n)
            if stop is not None and stop():
                if state_path is not None:
                    state = _state(fingerprint, model, optimizer, best_state, best_loss, best_epoch, history, False, started, rng)
                    state["partial"] = {
                        "epoch_rng": epoch_rng,
                        "batches_done": k + 1,
                        "sums": sums,
                        "seen": seen,
                        "seconds": time.perf_counter() - epoch_start,
                    }
                    _save_state(state_path, state)
                raise TrainingInterrupted(epoch, k + 1)
        val = evaluate(model, loss_fn, val_source)
        if not np.isfinite(val["loss"]):
            raise TrainingDiverged(f"training diverged at epoch {epoch}: validation loss is {val['loss']}", epoch, history)
        row = {"epoch": epoch, "beta": beta}
        row.update({f"train_{k}": v / max(seen, 1) for k, v in sums.items()})
        row.update({f"val_{k}": v for k, v in val.items() if k != "active_units"})
        row["active_units"] = val["active_units"]
        row["seconds"] = time.perf_counter() - epoch_start
        history.append(row)
        if val["loss"] < best_loss:
            best_loss, best_epoch, best_state = val["loss"], epoch, copy.deepcopy(model.state_dict())
        bar.set_postfix(recon=f"{val['recon']:.3f}", kl=f"{val['kl']:.1f}", au=val["active_units"], beta=f"{beta:.2f}")
        if progress == "log":
            log.info(
                "epoch %d/%d beta=%.3f train_loss=%.4f val_loss=%.4f val_recon=%.4f val_kl=%.2f active_units=%d seconds=%.1f",
                epoch + 1,
                config.epochs,
                beta,
                row["train_loss"],
                val["loss"],
                val["recon"],
                val["kl"],
                val["active_units"],
                row["seconds"],
            )
        stopped_early = epoch - best_epoch >= config.patience
        if state_path is not None:
            _save_state(
                state_path, _state(fingerprint, model, optimizer, best_state, best_loss, best_epoch, history, stopped_early, started, rng)
            )
        if on_epoch is not None:
            try:
                on_epoch(history)
            except TrainingPruned as exc:
                bar.close()
                model.load_state_dict(best_state)
                exc.history = history
                raise
        if stopped_early:
            break
    bar.close()
    model.load_state_dict(best_state)
    return TrainResult(
        history=history,
        best_epoch=best_epoch,
        epochs_trained=len(history),
        seconds=time.perf_counter() - started,
        stopped_early=stopped_early,
        best_loss=best_loss,
    )
