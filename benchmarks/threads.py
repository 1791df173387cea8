"""``python benchmarks/threads.py``: epoch times of one default run at each torch thread count, on an
idle machine and on one that other processes keep busy.

Each arm is the real CLI (``python -m vaelab trainer.threads=T``, the default model and data) run
for ``--epochs`` epochs; the arms take turns, ``--repeats`` times each, so other load hits them
alike. ``--load K`` starts K busy-looping processes for the whole measurement (the "other users" of
a shared machine). Per arm: the median, 95th percentile and slowest epoch (history.csv's
``seconds``), and slowest / median: an intra-op thread pool that waits for a descheduled thread
shows up there first. ``--threads`` lists the arms (0 = torch's default, every core).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HOG = "while True: pass"


def epoch_seconds(run_dir: Path, threads: int, args) -> list[float]:
    cmd = [
        sys.executable,
        "-m",
        "vaelab",
        f"trainer.epochs={args.epochs}",
        f"trainer.patience={args.epochs}",
        "eval.plots=false",
        "eval.probe_table=false",
        "quiet=true",
        f"hydra.run.dir={run_dir}",
    ]
    if threads:
        cmd.append(f"trainer.threads={threads}")
    subprocess.run(cmd, check=True, capture_output=True)
    return list(pd.read_csv(run_dir / "history.csv")["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--load", type=int, default=0, help="busy-looping processes kept running meanwhile")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.load)]
    seconds: dict[int, list[float]] = {t: [] for t in args.threads}
    try:
        with tempfile.TemporaryDirectory(prefix="vaelab-threads-") as tmp:
            for r in range(args.repeats):
                for t in args.threads:
                    seconds[t] += epoch_seconds(Path(tmp) / f"t{t}_r{r}", t, args)
    finally:
        for hog in hogs:
            hog.kill()
    rows = []
    for t, s in seconds.items():
        s = np.asarray(s)
        rows.append(
            {
                "threads": t or f"default ({os.cpu_count()} cores)",
                "epochs": len(s),
                "median_s": float(np.median(s)),
                "p95_s": float(np.percentile(s, 95)),
                "max_s": float(s.max()),
                "max_over_median": float(s.max() / np.median(s)),
                "total_s": float(s.sum()),
            }
        )
    print(
        f"{os.cpu_count()} cores, {args.load} busy-looping processes, {args.repeats} x {args.epochs} epochs per arm, default data and model"
    )
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json:
        args.json.write_text(json.dumps({"load": args.load, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
