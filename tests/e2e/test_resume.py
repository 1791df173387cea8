"""Interrupted runs: SIGKILL, SIGTERM or SIGINT a real training process, re-run the same command, same final metrics."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.slow

ARGS = [
    "data.n_patients=48",
    "data.seq_len=48",
    "model.latent_dim=4",
    "model.base_channels=8",
    "trainer.epochs=12",
    "trainer.patience=12",
    "trainer.batch_size=8",
    "schedule.warmup_epochs=2",
    "schedule.cycle_epochs=4",
    "quiet=true",
]
VOLATILE = {"train_seconds", "seconds", "output_dir", "timings", "fixed_seconds", "startup_seconds"}


def cli(run_dir, *extra):
    return [sys.executable, "-m", "vaelab", f"hydra.run.dir={run_dir}", *ARGS, *extra]


def epochs_saved(state_file):
    try:
        return len(torch.load(state_file, weights_only=True)["history"])
    except Exception:  # not written yet, or being replaced
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """metrics.json of the same run, uninterrupted."""
    root = tmp_path_factory.mktemp("reference")
    done = subprocess.run(cli(root / "run"), cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads((root / "run" / "metrics.json").read_text())


def same_metrics(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k not in VOLATILE} == {k: v for k, v in b.items() if k not in VOLATILE}


def start_and_wait_for_epochs(run_dir, cwd, epochs: int) -> subprocess.Popen:
    proc = subprocess.Popen(cli(run_dir), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while epochs_saved(run_dir / "train_state.pt") < epochs:
        assert proc.poll() is None, "training ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_preempted_run_writes_its_state_exits_128_plus_signal_and_resumes_to_the_same_metrics(tmp_path, reference, signum):
    """A batch system's SIGTERM (or Ctrl-C) stops training after the current batch, mid-epoch."""
    run_dir = tmp_path / "preempted"
    proc = start_and_wait_for_epochs(run_dir, tmp_path, 3)
    os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("vaelab:")]
    assert len(lines) == 1 and signal.Signals(signum).name in lines[0] and "to resume" in lines[0], stderr
    assert "Traceback" not in stderr
    stopped = json.loads((run_dir / "metrics.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["interrupted_batch"] >= 1 and 3 <= stopped["interrupted_epoch"] < 12
    state = torch.load(run_dir / "train_state.pt", weights_only=True)
    assert state["partial"]["batches_done"] == stopped["interrupted_batch"]  # the epoch in progress, written at its batch

    resumed = subprocess.run(cli(run_dir), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["status"] == "ok" and after["epochs_trained"] == 12
    assert same_metrics(reference, after)


def test_a_killed_run_resumes_to_the_same_metrics(tmp_path):
    reference = subprocess.run(cli(tmp_path / "reference"), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr

    run_dir = tmp_path / "interrupted"
    proc = subprocess.Popen(cli(run_dir), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while epochs_saved(run_dir / "train_state.pt") < 4:
        assert proc.poll() is None, "training ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = epochs_saved(run_dir / "train_state.pt")
    assert 4 <= killed_at < 12
    assert not (run_dir / "metrics.json").exists()
    assert not list(run_dir.glob("*.tmp")) or all(p.name.startswith(".") for p in run_dir.glob("*.tmp"))

    resumed = subprocess.run(cli(run_dir), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    b = json.loads((run_dir / "metrics.json").read_text())
    assert {k: v for k, v in a.items() if k not in VOLATILE} == {k: v for k, v in b.items() if k not in VOLATILE}
    assert b["epochs_trained"] == 12


def test_resume_refuses_a_state_from_another_config(tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.run(cli(run_dir, "trainer.epochs=2"), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    other = subprocess.run(cli(run_dir, "trainer.epochs=2", "loss.beta=2.0"), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert other.returncode == 2 and "written by a different configuration" in other.stderr
    fresh = subprocess.run(
        cli(run_dir, "trainer.epochs=2", "loss.beta=2.0", "trainer.resume=false"), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert fresh.returncode == 0, fresh.stderr
