"""vaelab.compare: probe tables of several embeddings and seeds side by side."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vaelab.compare import BASELINE, compare, read_probe_table, wide
from vaelab.evaluation.probe_table import probe_table


def _table(seed: int, n: int = 240, noise: float = 1.0):
    """A real probe table: a binary label readable from dimension 0, a continuous one from dimension 1."""
    rng = np.random.default_rng(100)  # the stays and labels are the same for every seed ...
    latent = rng.normal(size=(n, 4))
    labels = {"binary": (latent[:, 0] > 0).astype(np.int8), "continuous": latent[:, 1].astype(np.float32)}
    baseline = latent[:, 2:] + rng.normal(size=(n, 2))
    embedding = latent + noise * np.random.default_rng(seed).normal(size=latent.shape)  # ... the embedding varies
    return probe_table(embedding, labels, baseline=baseline, n_resamples=20)


def test_cells_are_mean_and_sd_over_runs_and_the_baseline_comes_once():
    runs = [_table(seed) for seed in (1, 2, 3)]
    other = [_table(seed, noise=3.0) for seed in (4, 5)]
    out = compare({"good": runs, "noisy": other})
    assert set(out.embedding) == {BASELINE, "good", "noisy"}
    assert list(dict.fromkeys(out.embedding)) == [BASELINE, "good", "noisy"]
    cell = out[(out.embedding == "good") & (out.features == "embedding") & (out.probe == "linear") & (out.label == "binary")]
    values = [
        t[(t.label == "binary") & (t.features == "embedding") & (t.probe == "linear") & (t.metric == "auroc")].value.item() for t in runs
    ]
    assert cell.metric.item() == "auroc" and cell.runs.item() == 3
    assert cell["mean"].item() == pytest.approx(np.mean(values)) and cell.sd.item() == pytest.approx(np.std(values, ddof=1))
    assert out[(out.label == "continuous")].metric.eq("r2").all()  # the headline metric of a continuous label
    base = out[out.embedding == BASELINE]
    assert base.runs.eq(5).all() and base.sd.fillna(0).eq(0).all()  # the same data and split in every run
    good = out[(out.embedding == "good") & (out.features == "embedding") & (out.probe == "linear")].set_index("label")["mean"]
    noisy = out[(out.embedding == "noisy") & (out.features == "embedding") & (out.probe == "linear")].set_index("label")["mean"]
    assert (good > noisy).all()  # the less noisy embedding probes better on both labels
    table = wide(out)
    assert "good · linear" in table.index and "good + summary statistics · gbt" in table.index
    assert table.loc["good · linear", "binary (auroc)"].count("±") == 1 and table.loc["good · linear", "runs"] == 3


def test_the_command_reads_csvs_and_globs_and_refuses_a_different_split(tmp_path):
    for seed in (1, 2):
        (tmp_path / f"run{seed}").mkdir()
        _table(seed).to_csv(tmp_path / f"run{seed}" / "probe_table.csv", index=False)
    _table(3, n=300).to_csv(tmp_path / "other.csv", index=False)
    md = tmp_path / "table.md"
    command = [sys.executable, "-m", "vaelab.compare", f"model={tmp_path}/run*", "--markdown", str(md)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert md.read_text().startswith("| features · probe |") and "model · linear" in md.read_text()
    assert read_probe_table(tmp_path / "run1").equals(read_probe_table(tmp_path / "run1" / "probe_table.csv"))
    refused = subprocess.run([*command[:4], f"peer={tmp_path}/other.csv"], capture_output=True, text=True)
    assert refused.returncode == 2 and "not the same stays or split" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    missing = subprocess.run([sys.executable, "-m", "vaelab.compare", f"x={tmp_path}/none.csv"], capture_output=True, text=True)
    assert missing.returncode == 2 and "none.csv: no such file" in missing.stderr
