"""Checkpoints: weights + model config + normalization statistics, loadable with weights_only=True.

Only tensors and plain Python values go in, so loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..data.prepare import Normalizer
from ..errors import VaelabError
from ..io import atomic_path
from ..models import MODELS, VAEBase, build_model, model_name
from ..models.base import ModelConfig

# Checkpoints written before models took a Config recorded build_model's old keyword arguments;
# options they lack were off then (the heads and BN-VAE came later).
LEGACY_OFF = {"spectral_head": False, "quantile_head": False, "observation_head": False, "posterior_bn": 0.0}


def model_args(name: str, input_dim: int, seq_len: int, config: ModelConfig) -> dict:
    """What rebuilds the model without Hydra: its registry name, the data's shape, its Config's fields."""
    return {"model": model_name(name), "input_dim": int(input_dim), "seq_len": int(seq_len), "config": dataclasses.asdict(config)}


def save_checkpoint(path: str | Path, model: VAEBase, args: dict, normalizer: Normalizer, config: dict) -> Path:
    """``args`` from ``model_args``; ``config`` is the run's whole composed config."""
    payload = {"state_dict": model.state_dict(), "model_args": args, "normalizer": normalizer.to_dict(), "config": config}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def rebuild_model(args: dict) -> VAEBase:
    """The model ``model_args`` describe, also from a checkpoint of the older flat layout."""
    if "model" in args:
        return build_model(args["model"], args["input_dim"], args["seq_len"], **args["config"])
    name = model_name(args["model_type"])
    fields = {f.name for f in dataclasses.fields(MODELS[name][0])}
    options = {k: v for k, v in {**LEGACY_OFF, **args}.items() if k in fields}
    return build_model(name, args["input_dim"], args["seq_len"], **options)


def load_checkpoint(path: str | Path) -> tuple[VAEBase, Normalizer, dict]:
    """(model in eval mode, normalizer, config) from a checkpoint written by a run."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise VaelabError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupt file
        raise VaelabError(f"{path}: not a vaelab checkpoint ({str(exc).splitlines()[0]})") from None
    args = payload["model_args"]
    model = rebuild_model(args)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError:
        raise VaelabError(
            f"{path}: its weights do not fit this vaelab's {args.get('model') or args.get('model_type')} model (written by an older layout?); "
            "retrain, or load it with the vaelab version that wrote it"
        ) from None
    return model.eval(), Normalizer.from_dict(payload["normalizer"]), payload["config"]
