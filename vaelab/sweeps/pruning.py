"""Stopping a sweep's hopeless trials early: Optuna's pruners, and vaelab's collapse rule.

A sweep job reports every epoch (``TrialPruning``, the trainer's ``on_epoch``): the collapse
figures (active units, true KL) as the trial's user attribute ``last_epoch``. Optuna's pruners judge one minimized value per epoch, and a vaelab
study has several objectives, so the job also keeps a single-objective companion study
``<study>:epochs`` in the same storage (one trial per sweep trial, the validation loss per epoch).
Every Optuna pruner (median, percentile, successive halving, Hyperband, Wilcoxon, threshold) then works as
Optuna documents it, on any number of sweep objectives and with any launcher: jobs only need the
storage, which every worker of a persistent study (SQLite, PostgreSQL, journal file) shares.

The collapse rule (``sweep.pruner=collapse``, settings ``sweep.collapse.*``, collapse_rule.py)
needs no other trial.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from ..analysis.studies import EPOCHS_STUDY_SUFFIX
from ..errors import VaelabError, check
from ..study_storage import make_storage
from ..training.trainer import TrainingPruned
from .collapse_rule import CollapseRule

log = logging.getLogger(__name__)

OPTUNA_PRUNERS = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "wilcoxon": optuna.pruners.WilcoxonPruner,
    "threshold": optuna.pruners.ThresholdPruner,
}
COLLAPSE = "collapse"
NO_PRUNER = "none"
PRUNERS = (NO_PRUNER, COLLAPSE, *OPTUNA_PRUNERS)


def check_pruner(name: str, options: dict[str, Any]) -> None:
    """Refuse an unknown pruner or option before the first trial (one line naming the key)."""
    check(name in PRUNERS, "sweep.pruner", f"must be one of {', '.join(PRUNERS)}, got {name!r}")
    if name in (NO_PRUNER, COLLAPSE):
        check(not options, "sweep.pruner_options", f"are for Optuna's pruners; {name} takes none (the rule's settings: sweep.collapse.*)")
    else:
        try:
            OPTUNA_PRUNERS[name](**options)
        except (TypeError, ValueError) as exc:
            raise VaelabError(f"config sweep.pruner_options: {name}: {exc}") from None


def optuna_pruner(name: str, options: dict[str, Any]) -> optuna.pruners.BasePruner:
    return OPTUNA_PRUNERS[name](**options) if name in OPTUNA_PRUNERS else optuna.pruners.NopPruner()


class TrialPruning:
    """One sweep job's link to its trial: ``__call__(history)`` after each epoch reports it and raises
    TrainingPruned when the pruner says stop; ``finish`` closes the companion trial."""

    def __init__(
        self, storage_url: Any, study_name: str, number: int, name: str, options: dict[str, Any], rule: CollapseRule | None = None
    ) -> None:
        self.name = name
        self.rule = (rule or CollapseRule()) if name == COLLAPSE else None
        storage = make_storage(storage_url, heartbeat_seconds=None)  # the sweep process beats for its trials
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "Using an existing study" once per trial
        try:
            self._open(storage, study_name, number, name, options)
        finally:
            optuna.logging.set_verbosity(verbosity)

    def _open(self, storage, study_name: str, number: int, name: str, options: dict[str, Any]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.load_study(study_name=study_name, storage=storage)
            self.epochs_study = optuna.create_study(
                study_name=study_name + EPOCHS_STUDY_SUFFIX,
                storage=storage,
                direction="minimize",
                pruner=optuna_pruner(name, options),
                load_if_exists=True,
            )
        self.storage = self.study._storage
        self.trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)
        self.epochs_trial = self.epochs_study.ask()
        self.epochs_trial.set_user_attr("sweep_trial", number)

    def __call__(self, history: list[dict]) -> None:
        row = history[-1]
        epoch, value = int(row["epoch"]), float(row["val_loss"])
        self.epochs_trial.report(value, epoch)
        # The figures are for people (the sweep's trial keeps no intermediate values: multi-objective
        # TPE would judge a pruned trial by them); a busy database must not stop training.
        with contextlib.suppress(Exception):
            self.storage.set_trial_user_attr(
                self.trial_id, "last_epoch", {"epoch": epoch, "active_units": int(row["active_units"]), "kl": float(row["val_kl"])}
            )
        if self.rule is not None:
            reason = self.rule.verdict(history)
        elif self.epochs_trial.should_prune():
            reason = f"{self.name} pruner: validation loss {value:.4f} at epoch {epoch} is worse than the other trials'"
        else:
            reason = None
        if reason is not None:
            self.storage.set_trial_user_attr(self.trial_id, "pruned_epoch", epoch)
            self.storage.set_trial_user_attr(self.trial_id, "pruned_reason", reason)
            raise TrainingPruned(epoch, reason)

    def finish(self, status: str, value: float | None = None) -> None:
        """Close the companion trial with the run's status (metrics.json's ``ok``, ``pruned``, ...)."""
        with contextlib.suppress(Exception):  # already told (a resumed job), or the storage is gone
            if status == "ok" and value is not None and math.isfinite(value):
                self.epochs_study.tell(self.epochs_trial, value)
            else:
                self.epochs_study.tell(self.epochs_trial, state=TrialState.PRUNED if status == "pruned" else TrialState.FAIL)
