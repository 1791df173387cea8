"""How much does the observation pattern alone say about sepsis? The evidence behind the observation head.

Probes the sepsis label of a Layer-2 file (the set-A import, first 48 h) from hand-made features, with
the probe table's own probes and split (``probe_table.label_split``, logistic and boosted trees):
the six per-vital summary statistics, the observation pattern (each vital's observed fraction per
``OBSERVATION_BLOCK_HOURS`` block, what ``model.observation_head`` predicts), and both::

    python experiments/physionet2019/observation_pattern.py LAYER2.h5 [--label sepsis]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from vaelab.data.layer2 import read_layer2
from vaelab.errors import VaelabError
from vaelab.evaluation.probe_table import label_split
from vaelab.evaluation.probes import linear_classifier, summary_statistics
from vaelab.signal import OBSERVATION_BLOCK_HOURS, observed_fractions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layer2", help="a Layer-2 file with a labels/ group")
    parser.add_argument("--label", default="sepsis")
    args = parser.parse_args(argv)
    try:
        data = read_layer2(args.layer2)
        if args.label not in (data.labels or {}):
            raise VaelabError(f"{args.layer2}: no label {args.label!r} in labels/")
        kind, rows, y, train, test = label_split(data.labels[args.label])
        if kind != "binary":
            raise VaelabError(f"{args.layer2}: label {args.label!r} is not binary")
    except VaelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = summary_statistics(data.values, data.masks)[rows]
    pattern = observed_fractions(torch.from_numpy(np.asarray(data.masks[rows], dtype=np.float32))).flatten(1).numpy()
    features = {"summary statistics": summary, f"observation pattern ({OBSERVATION_BLOCK_HOURS} h blocks)": pattern}
    features["summary statistics + observation pattern"] = np.concatenate([summary, pattern], axis=1)
    print(f"{args.label} AUROC on {len(test)} test stays ({int(y[test].sum())} positive)")
    for name, x in features.items():
        linear = linear_classifier().fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        trees = HistGradientBoostingClassifier(random_state=0).fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        print(f"  {name:45s} linear {roc_auc_score(y[test], linear):.3f}   boosted trees {roc_auc_score(y[test], trees):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
