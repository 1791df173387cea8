"""A disk that fills up mid-write: one line naming the file, exit status 2, and no half-written file
(temporary files are removed; every file left is complete and readable).

The disk is a 300 kB tmpfs: it holds Hydra's files and metrics.json, but not the tiny model's
train_state.pt (~340 kB), the first file training writes. Mounting needs root; elsewhere the tests
skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY
from omegaconf import OmegaConf

from vaelab.data.latents import write_latents
from vaelab.data.layer2 import write_layer2
from vaelab.data.synthetic import generate_synthetic
from vaelab.errors import VaelabError
from vaelab.io import METRICS_FILE, atomic_path, write_json
from vaelab.runs.recording import write_history

TMPFS_SIZE = "300k"
NO_SPACE = "No space left on device"


@pytest.fixture
def small_disk(tmp_path):
    """A mounted TMPFS_SIZE tmpfs, unmounted afterwards whatever happens."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)]).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=True)  # busy: detach now, freed when closed


def assert_complete(run_dir) -> None:
    """No temporary file is left, and every file present reads back whole."""
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert not [p.name for p in files if p.name.endswith(".tmp")]
    for path in files:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".h5":
            with h5py.File(path, "r") as f:
                [f[name][()] for name in f]
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".yaml":
            OmegaConf.load(path)


@pytest.mark.slow
def test_a_run_that_fills_the_disk_fails_in_one_line_and_leaves_whole_files(run_cli, small_disk):
    run_dir = small_disk / "run"
    proc = run_cli(*TINY, "trainer.batch_size=8", "eval.plots=false", run_dir=run_dir)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"vaelab: error: {run_dir}/") and lines[0].endswith(f"({NO_SPACE})"), lines[0]
    metrics = json.loads((run_dir / METRICS_FILE).read_text())  # the failure's record fits once the temporary file is gone
    assert metrics["status"] == "failed" and lines[0] == f"vaelab: error: {metrics['error']}"
    assert_complete(run_dir)


@pytest.mark.slow
def test_a_disk_full_before_the_run_fails_in_one_line(run_cli, small_disk):
    free = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * free.f_frsize * (free.f_bavail - 1))  # one block left
    run_dir = small_disk / "run"
    proc = run_cli(*TINY, run_dir=run_dir)
    assert proc.returncode == 2 and proc.stderr.startswith(f"vaelab: error: {run_dir}") and len(proc.stderr.splitlines()) == 1


def write_torch(path):
    with atomic_path(path) as tmp:
        torch.save({"weights": torch.zeros(200_000)}, tmp)  # torch reports a full disk as RuntimeError


WRITERS = {
    "json": lambda path: write_json(path, {"x": "x" * 400_000}),
    "csv": lambda path: write_history(path, [{"epoch": i, "note": "x" * 100} for i in range(4000)]),
    "latents h5": lambda path: write_latents(path, np.zeros((4000, 16)), np.zeros((4000, 16)), range(4000)),
    "layer2 h5": lambda path: write_layer2(path, generate_synthetic(300, 48, seed=0)),
    "torch": write_torch,
}


@pytest.mark.parametrize("writer", WRITERS.values(), ids=WRITERS.keys())
def test_every_writer_reports_a_full_disk_naming_the_file_and_keeps_the_old_file(small_disk, writer):
    path = small_disk / "result"
    path.write_text("the previous, complete version\n")
    with pytest.raises(VaelabError) as err:
        writer(path)
    assert str(err.value) == f"{path}: could not write ({NO_SPACE})"
    assert path.read_text() == "the previous, complete version\n"
    assert [p.name for p in small_disk.iterdir()] == ["result"]
    write_json(small_disk / METRICS_FILE, {"status": "failed"})  # the space the failed write took is free again
