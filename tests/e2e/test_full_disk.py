"""A full disk mid-run: one line naming the file, exit 2, and no half-written file."""

import os
import subprocess
import sys

import pytest
from conftest import TINY

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KiB tmpfs: room for the run's first files, not for its checkpoint."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_run_on_a_full_disk_fails_in_one_line_and_leaves_no_partial_file(small_disk, tmp_path):
    run_dir = small_disk / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "vaelab", f"hydra.run.dir={run_dir}", *TINY],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("vaelab: error: ") and "No space left on device" in lines[0], proc.stderr
    assert str(run_dir) in lines[0]  # names the file it could not write
    assert not list(run_dir.rglob("*.tmp"))
    assert not (run_dir / "vae_latents.h5").exists() or (run_dir / "checkpoint.pt").exists()
