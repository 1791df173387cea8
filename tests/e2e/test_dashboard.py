"""optuna-dashboard for a real sweep, served on loopback and asked over real HTTP."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow

TINY_SWEEP = ["hparams_search=collapse", "data.n_patients=24", "data.seq_len=48", "trainer=debug", "model.latent_dim=4"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, deadline: float):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_the_dashboard_serves_the_sweeps_trials_on_loopback(tmp_path):
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "vaelab", *TINY_SWEEP, f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.n_trials=2"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "vaelab", "dashboard", str(sweep_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies", time.monotonic() + 60)["study_summaries"]
        collapse = next(s for s in studies if s["study_name"] == "collapse")
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{collapse['study_id']}", time.monotonic() + 30)
        assert len(detail["trials"]) == 2 and {t["state"] for t in detail["trials"]} == {"Complete"}
        assert {p["name"] for p in detail["trials"][0]["params"]} == {
            "loss.beta",
            "loss.free_bits",
            "schedule.cycle_epochs",
            "model.base_channels",
        }
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=5) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert f"dashboard for sqlite:///{sweep_dir.resolve()}/optuna.db at http://127.0.0.1:{port}/" in err


@pytest.mark.parametrize(
    "target, message",
    [("nowhere", "nowhere: neither a sweep directory nor a storage URL"), (".", "no optuna.db in this directory")],
)
def test_the_dashboard_refuses_what_holds_no_study(tmp_path, target, message):
    proc = subprocess.run([sys.executable, "-m", "vaelab", "dashboard", target], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
