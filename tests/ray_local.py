"""A one-node Ray cluster that only this machine's loopback can see, started with `ray start --head`
and stopped by signalling its own processes: for tests and measurements of ``hydra/launcher=ray``
(tests/e2e/test_sweep_ray.py, experiments/sweep_launchers/ray_vs_basic.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# Ray's settings for a cluster that nothing outside this machine can reach or is told about:
RAY_ENV = {
    # on Linux Ray replaces 127.0.0.1 by the address of the default route's interface; this (Ray's
    # switch for macOS and Windows, where clusters are off) keeps every Ray socket on the loopback
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report (ray start also gets --disable-usage-stats)
    "RAY_AUTH_MODE": "disabled",  # token auth would write ~/.ray/auth_token, outside the test's directories
}
STOP_GRACE_SECONDS = 2.0  # then SIGKILL: gcs_server, raylet and the autoscaler monitor outlast SIGTERM by seconds


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def live_processes(session_id: int, temp_dir: str) -> list[int]:
    """The cluster's processes that are still alive: those in the session `ray start` began (Ray's
    daemons and workers stay in it) and any other whose command line names the cluster's temp dir."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z" and (int(fields[3]) == session_id or temp_dir.encode() in cmdline):
            found.append(int(entry.name))
    return found


def stop(session_id: int, temp_dir: str) -> list[int]:
    """SIGTERM, then SIGKILL after STOP_GRACE_SECONDS, to the cluster's processes; those still alive."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = live_processes(session_id, temp_dir)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while pids and time.monotonic() < deadline:
            time.sleep(0.2)
            pids = live_processes(session_id, temp_dir)
        if not pids:
            break
    return live_processes(session_id, temp_dir)


def client_env() -> dict[str, str]:
    """This process's environment for a Ray client of the loopback cluster (RAY_ADDRESS dropped)."""
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | RAY_ENV


def head_env(temp_dir: str) -> dict[str, str]:
    """The environment for a process that starts a Ray head (`ray start --head`, or a sweep whose
    ray.init starts one): client_env() and two more settings. With usage stats off, the head's
    dashboard process still (1) names the cloud it runs on by asking 169.254.169.254 and
    metadata.google.internal, unless ~/ray_bootstrap_config.yaml (what `ray up` leaves on a head)
    answers first, and (2) after `ray start`, tells https://usage-stats.ray.io/ that stats are off.
    So the head gets a home of its own under ``temp_dir`` holding that file (matplotlib keeps its
    cache where it was), and a report URL on the loopback where nothing listens."""
    import matplotlib

    home = Path(temp_dir) / "home"
    home.mkdir(exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text("{}\n")
    (nobody,) = free_ports(1)
    return client_env() | {
        "HOME": str(home),
        "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR") or matplotlib.get_configdir(),
        "RAY_USAGE_STATS_REPORT_URL": f"http://127.0.0.1:{nobody}/",
    }


@contextlib.contextmanager
def loopback_ray_cluster(num_cpus: int = 2) -> Iterator[tuple[str, dict[str, str], str]]:
    """Start the cluster; yield (its address, the environment for its clients, its temp dir); stop it
    and raise when any of its processes outlives the stop.

    The temp dir is a short directory of its own (not pytest's tmp_path): Ray's unix sockets live
    under <temp dir>/session_<date>_<pid>/sockets/ and a socket path may not exceed 107 bytes. The
    cluster is stopped by signalling its own processes (the session `ray start` began), not with
    `ray stop`, which stops every Ray process of the user on this machine."""
    temp_dir = tempfile.mkdtemp(prefix="vaelab-ray-")
    port, client_port, agent_port, dashboard_port = free_ports(4)
    env = client_env()
    start = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            f"--ray-client-server-port={client_port}",
            f"--dashboard-agent-listen-port={agent_port}",
            f"--dashboard-port={dashboard_port}",
            "--include-dashboard=false",
            f"--num-cpus={num_cpus}",
            "--object-store-memory=78643200",  # 75 MiB, Ray's minimum: the trials pass only their JobReturns
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        env=head_env(temp_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the daemons it leaves behind keep this session id: how they are found
    )
    try:
        out, _ = start.communicate(timeout=180)
        if start.returncode != 0:
            raise RuntimeError(f"ray start failed ({start.returncode}): {out[-3000:]}")
        if "Local node IP: 127.0.0.1" not in re.sub(r"\x1b\[[0-9;]*m", "", out):
            raise RuntimeError(f"ray start did not bind to the loopback: {out[-3000:]}")
        yield f"127.0.0.1:{port}", env, temp_dir
    finally:
        if start.poll() is None:
            start.kill()
        left = stop(start.pid, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        if left:
            raise RuntimeError(f"Ray processes left behind: {left}")
