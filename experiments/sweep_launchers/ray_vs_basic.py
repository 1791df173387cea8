"""The 3-trial Ray sweep of tests/e2e/test_sweep_ray.py against the same sweep with the basic launcher,
timed in one run (each sweep a fresh ``python -m vaelab`` process; the wall time is that process's):

    python experiments/sweep_launchers/ray_vs_basic.py                       # the test's tiny trials, once
    python experiments/sweep_launchers/ray_vs_basic.py --repeats 2 --trials 6 data.n_patients=600 trainer=default trainer.epochs=30

  basic        Hydra's basic launcher: one trial after another inside the sweep process, torch on all cores
  ray-local    hydra/launcher=ray, hydra.launcher.ray.init.address=local: the launcher starts a private
               Ray for the sweep (in the wall time) and stops it at exit
  ray-cluster  hydra/launcher=ray, hydra.launcher.ray.init.address=127.0.0.1:<port>: the sweep joins a
               cluster started before (`ray start --head`, timed apart: "ray start s")

Every sweep has hydra.sweeper.n_jobs=2: two trials per batch, run one after the other by basic and at
once by Ray (one CPU and one torch thread each, ray.remote.num_cpus=1). Ray stays on the loopback
(tests/ray_local.py); afterwards no Ray process may be left. Writes <out>/timing.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # the tests' tiny trial size and loopback Ray cluster

from conftest import TINY  # noqa: E402
from ray_local import client_env, head_env, loopback_ray_cluster, stop  # noqa: E402


def sweep(name: str, out: Path, trials: int, extra: list[str], env: dict[str, str], launcher: list[str]) -> dict:
    sweep_dir = out / name
    shutil.rmtree(sweep_dir, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "vaelab",
        "hparams_search=collapse",
        *TINY,
        *extra,
        *launcher,
        "hydra.sweeper.n_jobs=2",
        f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    runs = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("trial_*/metrics.json"))]
    ok = [r for r in runs if r.get("status") == "ok"]
    startups = [r["startup_seconds"] for r in ok if r.get("startup_seconds") is not None]
    return {
        "name": name,
        "command": " ".join(command[1:]).replace(str(out), "$OUT"),
        "trials": len(ok),
        "wall": wall,
        "trial": sum(r["seconds"] for r in ok) / len(ok),
        "train": sum(r["train_seconds"] for r in ok) / len(ok),
        "threads": sorted({r["threads"] for r in ok}),
        "startup": sum(startups) / max(len(startups), 1),
        "processes": len(startups),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="run the three sweeps this many times, in turn")
    parser.add_argument("--out", type=Path, default=REPO / "multirun" / "sweep_launchers" / "ray_vs_basic")
    parser.add_argument("overrides", nargs="*", help="more vaelab overrides for every sweep (after the test's tiny size)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, ray_starts = [], []
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores", flush=True)
    for repeat in range(args.repeats):
        rows.append(sweep("basic", args.out, args.trials, args.overrides, client_env(), []))
        local_tmp = tempfile.mkdtemp(prefix="vaelab-ray-")
        launcher = ["hydra/launcher=ray", "hydra.launcher.ray.init.address=local", f"+hydra.launcher.ray.init._temp_dir={local_tmp}"]
        try:
            rows.append(sweep("ray-local", args.out, args.trials, args.overrides, head_env(local_tmp), launcher))
        finally:
            left = stop(-1, local_tmp)  # the sweep's own Ray stops with it: nothing should be found
            shutil.rmtree(local_tmp, ignore_errors=True)
        if left:
            raise SystemExit(f"ray-local left Ray processes behind: {left}")
        started = time.perf_counter()
        with loopback_ray_cluster(num_cpus=2) as (address, env, _):
            ray_starts.append(time.perf_counter() - started)
            launcher = ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}"]
            rows.append(sweep("ray-cluster", args.out, args.trials, args.overrides, env, launcher))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    lines = [
        f"{'launcher':<11} {'trials':>6} {'wall s':>7} {'trial s':>8} {'train s':>8} {'threads':>7} {'startup s':>9} {'processes':>9}",
    ]
    for r in rows:
        lines.append(
            f"{r['name']:<11} {r['trials']:>6} {r['wall']:>7.1f} {r['trial']:>8.2f} {r['train']:>8.2f} "
            f"{','.join(map(str, r['threads'])):>7} {r['startup']:>9.1f} {r['processes']:>9}"
        )
    mean = {name: sum(r["wall"] for r in rows if r["name"] == name) / args.repeats for name in ("basic", "ray-local", "ray-cluster")}
    lines.append(
        f"mean wall s: basic {mean['basic']:.1f}, ray-local {mean['ray-local']:.1f} ({mean['ray-local'] / mean['basic']:.2f}x), "
        f"ray-cluster {mean['ray-cluster']:.1f} ({mean['ray-cluster'] / mean['basic']:.2f}x); "
        f"ray start (not in ray-cluster's wall) {sum(ray_starts) / len(ray_starts):.1f} s"
    )
    lines += ["", "commands ($OUT = " + str(args.out) + "):"] + [f"  {r['name']}: python {r['command']}" for r in rows[:3]]
    text = "\n".join(lines)
    print(text)
    (args.out / "timing.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
