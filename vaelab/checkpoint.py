"""Checkpoints: weights + config + normalization statistics, loadable with weights_only=True.

Only tensors and plain Python values go in, so loading never unpickles arbitrary objects.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_path
from .data.tensors import Normalizer
from .errors import VaelabError
from .models import build_model
from .models.base import VAEBase

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(path: str | Path, model: VAEBase, model_args: dict, normalizer: Normalizer, config: dict) -> Path:
    """``model_args`` are build_model's keyword arguments, so the model can be rebuilt without Hydra."""
    payload = {"state_dict": model.state_dict(), "model_args": model_args, "normalizer": normalizer.to_dict(), "config": config}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> tuple[VAEBase, Normalizer, dict]:
    """(model in eval mode, normalizer, config) from a checkpoint written by a run."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise VaelabError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupt file
        raise VaelabError(f"{path}: not a vaelab checkpoint ({str(exc).splitlines()[0]})") from None
    args = payload["model_args"]
    model = build_model(**args)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError:
        raise VaelabError(
            f"{path}: its weights do not fit this vaelab's {args.get('model_type')} model (written by an older layout?); "
            "retrain, or load it with the vaelab version that wrote it"
        ) from None
    return model.eval(), Normalizer.from_dict(payload["normalizer"]), payload["config"]
