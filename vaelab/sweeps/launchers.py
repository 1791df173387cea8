"""What each Hydra launcher gives a sweep trial, in one place: its torch threads, its GPUs, the
storage it must reach.

A trial runs where its launcher puts it: a joblib worker process, a submitit job (on SLURM, or a
local process under ``slurm_local``), a Ray task. The launcher's resource settings and the trainer's
must agree, or a trial idles the GPU it was given, fails on one it was not given, or crowds the
cores its neighbours train on. ``check_launcher`` refuses a disagreement before the first trial.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

from ..errors import VaelabError

log = logging.getLogger(__name__)

NODE_LOCAL_DIRS = ("/tmp/", "/dev/shm/", "/var/tmp/")  # never shared between a cluster's nodes


def launcher_kind(launcher: Mapping[str, Any]) -> str:
    """``joblib``, ``submitit_slurm``, ``submitit_local``, ``ray`` or ``basic``, from the launcher's _target_."""
    target = str(launcher.get("_target_", ""))
    if "joblib" in target:
        return "joblib"
    if "submitit" in target:
        return "submitit_slurm" if "Slurm" in target else "submitit_local"
    if "ray" in target.lower():
        return "ray"
    return "basic"


def trial_threads(launcher: Mapping[str, Any]) -> int | None:
    """The torch threads a trial trains with when ``trainer.threads`` is null: its launcher's share of
    the cores (joblib: one, its trials run side by side; submitit: ``cpus_per_task``; Ray: the task's
    ``num_cpus``); None for the basic launcher, whose one trial at a time takes a single run's default."""
    kind = launcher_kind(launcher)
    if kind == "joblib":
        return 1
    if kind.startswith("submitit"):
        return launcher.get("cpus_per_task") or None
    if kind == "ray":
        return max(1, int(((launcher.get("ray") or {}).get("remote") or {}).get("num_cpus") or 1))  # a fraction: 1
    return None


def trial_gpus(launcher: Mapping[str, Any]) -> int:
    """The GPUs the launcher gives each trial (submitit: ``gpus_per_node`` or ``gpus_per_task``; Ray:
    the task's ``num_gpus``); 0 for the launchers that hand out none."""
    kind = launcher_kind(launcher)
    if kind.startswith("submitit"):
        return int(launcher.get("gpus_per_node") or 0) or int(launcher.get("gpus_per_task") or 0)
    if kind == "ray":
        return int(((launcher.get("ray") or {}).get("remote") or {}).get("num_gpus") or 0)
    return 0


def trial_cuda_memory_fraction(launcher: Mapping[str, Any], trials_at_once: int, device: str) -> float | None:
    """The share of one GPU's memory each trial may take when the joblib launcher runs
    ``trials_at_once`` trials side by side on it (1 / that number); None elsewhere (a SLURM or Ray
    trial has its GPU to itself, and a CPU trial allocates none)."""
    if launcher_kind(launcher) == "joblib" and device.startswith("cuda") and trials_at_once > 1:
        return 1.0 / trials_at_once
    return None


def check_launcher(launcher: Mapping[str, Any], device: str, pruner: str, storage_url: str | None) -> None:
    """Refuse a launcher and trainer that disagree on GPUs (one line naming both keys); warn when a
    SLURM sweep prunes through a study file that the nodes cannot share."""
    kind, gpus = launcher_kind(launcher), trial_gpus(launcher)
    uses_cuda = device.startswith("cuda")
    if kind.startswith("submitit") or kind == "ray":
        key = "hydra.launcher.ray.remote.num_gpus" if kind == "ray" else "hydra.launcher.gpus_per_node"
        if gpus and not uses_cuda:
            raise VaelabError(f"{key}={gpus} gives each trial a GPU, but trainer.device={device} leaves it idle: add trainer.device=cuda")
        if uses_cuda and not gpus:
            raise VaelabError(f"trainer.device={device}, but {key} is not set: the launcher gives the trials no GPU (add {key}=1)")
    if kind == "ray":
        check_ray_address(((launcher.get("ray") or {}).get("init") or {}).get("address"))
    if kind == "submitit_slurm" and pruner != "none" and storage_url and _node_local(storage_url):
        log.warning(
            "hydra.sweeper.storage %s is on a node-local path: SLURM jobs on other nodes cannot report to it, "
            "so sweep.pruner=%s cannot judge them; put the study on a shared filesystem or a database",
            storage_url,
            pruner,
        )


def check_ray_address(address: str | None, timeout: float = 5.0) -> None:
    """A ``host:port`` where no Ray cluster answers is refused at once; ray.init would retry it for
    minutes per trial. null, ``auto``, ``local`` and ``ray://`` (Ray Client) addresses are Ray's to resolve."""
    if not address or address in ("auto", "local") or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError):
        raise VaelabError(f"hydra.launcher.ray.init.address={address}: no Ray cluster answers there") from None


def _node_local(url: str) -> bool:
    path = url.split(":///", 1)[-1] if url.startswith(("sqlite:///", "journal:///")) else ""
    return any(("/" + path.lstrip("/")).startswith(d) for d in NODE_LOCAL_DIRS)
