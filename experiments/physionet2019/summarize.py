"""What each embedding of run.sh cost and what its latent looks like: one row per embedding, mean ± sd over seeds.

Usage: python experiments/physionet2019/summarize.py [OUT_DIR]   (default multirun/physionet2019_table)

VAE runs (``<name>/seed_*/metrics.json``): epochs trained, training and whole-run seconds, true KL,
active units, latent spread, held-out reconstruction. Peers (``<name>/seed_*/run.json``): epochs
(best epoch), training seconds. The probe table itself is vaelab.compare's (run.sh writes table.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def _record(seed_dir: Path) -> dict | None:
    metrics, peer = seed_dir / "metrics.json", seed_dir / "run.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        return {
            "epochs": m.get("epochs_trained"),
            "train s": m.get("train_seconds"),
            "run s": m.get("seconds"),
            "KL": m.get("kl"),
            "AU": m.get("active_units"),
            "latent dim": m.get("latent_dim"),
            "spread": m.get("latent_spread"),
            "recon MSE": m.get("recon_mse"),
        }
    if peer.is_file():
        r = json.loads(peer.read_text())
        return {
            "epochs": r.get("epochs_trained", r.get("settings", {}).get("epochs")),
            "best epoch": r.get("best_epoch"),
            "train s": r.get("train_seconds"),
        }
    return None


def summarize(out: Path) -> pd.DataFrame:
    rows = []
    for embedding in sorted(p for p in out.iterdir() if p.is_dir() and p.name != "logs"):
        records = [r for r in map(_record, sorted(embedding.glob("seed_*"))) if r is not None]
        if not records:
            continue
        frame = pd.DataFrame(records).astype(float)
        row = {"embedding": embedding.name, "seeds": len(records)}
        for column in frame.columns:
            values = frame[column].dropna()
            if len(values):
                row[column] = f"{values.mean():.4g} ± {values.std(ddof=1):.2g}" if len(values) > 1 else f"{values.iloc[0]:.4g}"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "multirun/physionet2019_table")
    if not out.is_dir():
        print(f"summarize.py: {out}: no such directory (run experiments/physionet2019/run.sh first)", file=sys.stderr)
        return 2
    table = summarize(out)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
