"""The exact lines of the README's bad-input table that issue 14 added: a probe label a run cannot
use (refused before training, naming the file), seeds out of range and non-finite float settings."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from vaelab.data.layer2 import write_layer2
from vaelab.data.synthetic import generate_synthetic
from vaelab.errors import VaelabError
from vaelab.io import METRICS_FILE
from vaelab.runs.config import validate
from vaelab.runs.pipeline import run

N = 24
SMALL = ["trainer=debug", "trainer.epochs=1", "model.latent_dim=4", "model.base_channels=8", "quiet=true", "eval.plots=false"]
LABELS = {
    "strings": (np.array([b"yes", b"no"] * (N // 2)), "holds 'yes', not a number; the probe needs a binary 0/1 label"),
    "nan": (np.where(np.arange(N) == 0, np.nan, np.arange(N) % 2), "has nan at entry 0; the probe needs a finite binary label"),
    "three classes": (np.arange(N) % 3, "has 3 distinct value(s) [0, 1, 2]; the probe needs exactly 2"),
}


@pytest.mark.parametrize("label, problem", LABELS.values(), ids=LABELS.keys())
def test_a_probe_label_the_probe_cannot_use_is_refused_before_training(compose_config, tmp_path, label, problem):
    path = tmp_path / "layer2.h5"
    write_layer2(path, generate_synthetic(N, 48, seed=0))
    with h5py.File(path, "a") as f:
        f["labels/sepsis"] = label
    out = tmp_path / "run"
    with pytest.raises(VaelabError) as err:
        run(validate(compose_config(["data=h5", f"data.path={path}", *SMALL])), out)
    assert str(err.value) == f"{path}: dataset 'labels/sepsis' (eval.probe_label) {problem}"
    assert {p.name for p in out.iterdir()} == {METRICS_FILE}  # no epoch ran: no train_state.pt


@pytest.mark.parametrize(
    "override, message",
    [
        ("seed=4294967296", "config seed: must be between 0 and 4294967295, got 4294967296"),
        ("eval.probe_seed=-1", "config eval.probe_seed: must be between 0 and 4294967295, got -1"),
        ("trainer.lr=inf", "config trainer.lr: must be finite, got inf"),
        ("loss.beta=inf", "config loss.beta: must be finite, got inf"),
        ("sweep.penalty=inf", "config sweep.penalty: must be finite, got inf"),
        ("eval.n_plot_patients=0", "config eval.n_plot_patients: must be >= 1, got 0"),
    ],
)
def test_values_no_run_can_use_get_one_line_naming_the_key(compose_config, override, message):
    with pytest.raises(VaelabError) as err:
        validate(compose_config([override]))
    assert str(err.value) == message
