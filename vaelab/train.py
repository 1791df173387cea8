"""One trainer for every model: Adam, early stopping, best weights, per-epoch history.

Early stopping and the choice of best weights use the validation objective at the schedule's
*target* beta, so epochs stay comparable while a cyclical schedule moves beta up and down.
Validation decodes the posterior mean, so the figures are deterministic.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .atomic import atomic_path
from .data.tensors import BatchSource, as_batch_source
from .errors import VaelabError
from .losses import LossTerms, VAELoss
from .models.base import VAEBase

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: Var_x(E[z_u|x]) above this counts as active


class TrainingDiverged(VaelabError):
    """The loss became NaN or Inf; carries the epoch and the history so far."""

    def __init__(self, message: str, epoch: int, history: list[dict]):
        super().__init__(message)
        self.epoch = epoch
        self.history = history


@dataclass
class TrainConfig:
    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 30
    seed: int = 0
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    progress: bool = True  # a tqdm bar over epochs; off for sweeps and tests
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise VaelabError(f"config trainer.{name}: must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise VaelabError(f"config trainer.lr: must be > 0, got {self.lr}")
        if self.threads is not None and self.threads < 1:
            raise VaelabError(f"config trainer.threads: must be >= 1 or null, got {self.threads}")
        resolve_device(self.device)


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


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@dataclass
class TrainResult:
    history: list[dict]
    best_epoch: int
    epochs_trained: int
    seconds: float
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed torch (weights, dropout, sampling) before a model is built, so a run is reproducible."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def _as_tensor(array: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32)).to(device)


def objective_terms(model: VAEBase, loss_fn: VAELoss, recon, x, mu, logvar, mask, branches, beta: float) -> LossTerms:
    """The loss's terms with the model's head predictions from the posterior mean (spectral and
    quantile heads; None for a model without them): what training, validation and the benchmark charge."""
    return loss_fn.terms(recon, x, mu, logvar, mask, branches, beta=beta, band_power=model.band_power(mu),
                         quantiles=model.value_quantiles(mu))


@torch.no_grad()
def encode_posterior(
    model: VAEBase, x: np.ndarray | BatchSource, mask: np.ndarray | None = None, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances (N, latent_dim) in eval mode, in the source's order.

    ``x`` is an array (with ``mask``) or a batch source (no mask), e.g. a streamed Layer-2 file.
    """
    model.eval()
    device = _device_of(model)
    mus, logvars = [], []
    for xb, mb in as_batch_source(x, mask).batches(batch_size):
        _, mu, logvar = model.encode(_as_tensor(xb, device), _as_tensor(mb, device))
        mus.append(mu.cpu().numpy())
        logvars.append(logvar.cpu().numpy())
    return np.concatenate(mus), np.concatenate(logvars)


@torch.no_grad()
def reconstruct(model: VAEBase, x: np.ndarray, mask: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, list[np.ndarray]]:
    """Reconstruction from the posterior mean (and per-branch outputs, empty for the LSTM)."""
    model.eval()
    device = _device_of(model)
    recons, branches = [], []
    for xb, mb in as_batch_source(x, mask).batches(batch_size):
        _, mu, _ = model.encode(_as_tensor(xb, device), _as_tensor(mb, device))
        recon, parts = model.decode(mu, return_branches=True)
        recons.append(recon.cpu().numpy())
        branches.append([p.cpu().numpy() for p in parts])
    per_branch = [np.concatenate([b[i] for b in branches]) for i in range(len(branches[0]))]
    return np.concatenate(recons), per_branch


@torch.no_grad()
def evaluate(
    model: VAEBase, loss_fn: VAELoss, x: np.ndarray | BatchSource, mask: np.ndarray | None = None, batch_size: int = 256
) -> dict:
    """Validation figures at the target beta, decoding the posterior mean (arrays or a batch source)."""
    model.eval()
    device = _device_of(model)
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "kl_clamped": 0.0}
    mus = []
    source = as_batch_source(x, mask)
    for xb, mb in source.batches(batch_size):
        xb, mb = _as_tensor(xb, device), _as_tensor(mb, device)
        _, mu, logvar = model.encode(xb, mb)
        recon, branches = model.decode(mu, return_branches=True)
        t = objective_terms(model, loss_fn, recon, xb, mu, logvar, mb, branches, loss_fn.target_beta)
        for key, value in (("loss", t.total), ("recon", t.recon), ("kl", t.kl), ("kl_clamped", t.kl_clamped)):
            sums[key] += value.item() * len(xb)
        mus.append(mu.cpu().numpy())
    figures = {k: v / len(source) for k, v in sums.items()}
    figures["active_units"] = int((np.concatenate(mus).var(axis=0) > ACTIVE_UNIT_THRESHOLD).sum())
    return figures


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
        raise VaelabError(f"{path}: cannot resume from this training state ({str(exc).splitlines()[0]}); delete it or set trainer.resume=false") from None
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
    state_path: Path | None = None,
    fingerprint: str = "",
) -> TrainResult:
    """Train in place; the model ends with its best validation weights.

    Inputs are normalized (N, T, V) arrays with 0 where unobserved, and their masks; or, for data
    larger than memory, batch sources (``data.tensors.BatchSource``, e.g. a streamed Layer-2 file)
    in place of ``x_train`` / ``x_val`` with the masks None. Both read the same ``rng`` the same way,
    so arrays train exactly as before. Raises TrainingDiverged as soon as a training loss is NaN or Inf.

    With ``state_path``, the whole training state (weights, best weights, Adam, history, early
    stopping, torch and numpy random states) is written there atomically after every epoch, and
    an existing state with the same ``fingerprint`` is continued: a run killed mid-training and
    resumed ends exactly as an uninterrupted one (deterministic on CPU).
    """
    config = config or TrainConfig()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = resolve_device(config.device)
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
    started = time.perf_counter() - seconds_before
    bar = tqdm(range(first_epoch, config.epochs), desc="training", unit="epoch", disable=not config.progress, leave=False,
               initial=first_epoch, total=config.epochs)
    for epoch in ([] if stopped_early else bar):
        epoch_start = time.perf_counter()
        beta = loss_fn.get_beta(epoch)
        model.train()
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "kl_clamped": 0.0}
        seen = 0
        for xb, mb in train_source.batches(config.batch_size, rng):
            if len(xb) < 2 and len(train_source) >= 2:
                continue  # BatchNorm cannot train on a batch of one
            xb, mb = _as_tensor(xb, device), _as_tensor(mb, device)
            recon, mu, logvar, branches = model(xb, mb, return_branches=True)
            t = objective_terms(model, loss_fn, recon, xb, mu, logvar, mb, branches, beta)
            if not torch.isfinite(t.total):
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch}: loss is {t.total.item()} (try a smaller trainer.lr)", epoch, history
                )
            optimizer.zero_grad(set_to_none=True)
            t.total.backward()
            optimizer.step()
            n = len(xb)
            seen += n
            for key, value in (("loss", t.total), ("recon", t.recon), ("kl", t.kl), ("kl_clamped", t.kl_clamped)):
                sums[key] += value.item() * n
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
        stopped_early = epoch - best_epoch >= config.patience
        if state_path is not None:
            _save_state(state_path, {
                "fingerprint": fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "best_model": best_state, "best_loss": best_loss, "best_epoch": best_epoch, "history": history,
                "stopped_early": stopped_early, "seconds": time.perf_counter() - started,
                "torch_rng": torch.get_rng_state(), "numpy_rng": rng.bit_generator.state,
            })
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
    )
