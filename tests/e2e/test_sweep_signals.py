"""SIGTERM / SIGINT to a parallel (joblib) sweep: its workers die with it, its running trials are
marked FAIL, and it exits EXIT_ENDED_SHORT in one line. Processes are counted from /proc."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY
from optuna.trial import TrialState

from vaelab.sweeps.sweeper import EXIT_ENDED_SHORT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts processes in /proc")]

SLOW_PARALLEL_SWEEP = [
    "hparams_search=collapse",
    *TINY,
    "sweep.report=false",
    "hydra/launcher=joblib",
    "hydra.sweeper.n_jobs=2",
    "hydra.sweeper.n_trials=4",
    "trainer.epochs=500",
    "trainer.patience=500",
]


def processes_of(session: int, mention: str) -> dict[int, str]:
    """Live processes in the session, or whose command line mentions ``mention``: pid -> command line."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z" and (int(fields[3]) == session or mention in cmdline) and "pytest" not in cmdline:
            found[int(entry.name)] = cmdline
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_sweep_and_its_workers(tmp_path, signum):
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaelab", *SLOW_PARALLEL_SWEEP, f"hydra.sweep.dir={sweep_dir}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its session id is its pid: every process it starts carries it
    )
    deadline = time.time() + 300
    while not ((sweep_dir / "trial_0" / "vaelab.log").exists() and (sweep_dir / "trial_1" / "vaelab.log").exists()):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.time() < deadline, "the two trials never started"
        time.sleep(0.2)
    before = processes_of(proc.pid, str(sweep_dir))
    workers = [cmd for cmd in before.values() if "loky" in cmd and "resource_tracker" not in cmd]
    assert len(workers) == 2, before

    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_ENDED_SHORT, err[-2000:]
    assert "Traceback" not in err
    message = f"; stopped by {signal.Signals(signum).name}"
    (line,) = [line for line in err.splitlines() if line.startswith("vaelab: error: sweep collapse:")]
    assert line.endswith(message) and "0 of 4 trials complete" in line, line

    deadline = time.time() + 5
    while (left := processes_of(proc.pid, str(sweep_dir))) and time.time() < deadline:
        time.sleep(0.1)
    print(f"{signal.Signals(signum).name}: {len(before)} processes before ({len(workers)} workers), {len(left)} after")
    assert not left, left
    written = {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("*") if p.is_file()}
    time.sleep(2)
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("*") if p.is_file()} == written  # nothing writes there any more

    trials = optuna.load_study(study_name="collapse", storage=f"sqlite:///{sweep_dir}/optuna.db").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 2  # the two running trials, marked; none left RUNNING
