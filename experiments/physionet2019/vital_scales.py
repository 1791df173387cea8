"""Would per-vital robust scaling change what the model sees? Each vital's z-scale against its robust scale.

The model's inputs are z-scored per vital (``Normalizer``: mean and std over observed entries).
Robust scaling would use the median and the interquartile range instead. Where std / IQR is about
the same for every vital, robust scaling is one common factor on every input (which the first
convolution absorbs) plus a small per-vital shift; what it would change is the outliers, and the
tails columns count them::

    python experiments/physionet2019/vital_scales.py LAYER2.h5
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from vaelab.data.layer2 import read_layer2
from vaelab.data.prepare import Normalizer
from vaelab.errors import VaelabError

TAIL_Z = (4.0, 6.0)  # |z| beyond which an observed entry counts as a tail entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layer2", help="a Layer-2 file")
    args = parser.parse_args(argv)
    try:
        data = read_layer2(args.layer2)
        normalizer = Normalizer.fit(data.values, data.masks, data.vitals, source=args.layer2)
    except VaelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tails = "  ".join(f"|z|>{z:g}" for z in TAIL_Z)
    print(
        f"{'vital':8s} {'observed':>9s} {'mean':>8s} {'std':>7s} {'median':>8s} {'IQR':>7s} {'std/IQR':>7s} {'(median-mean)/std':>17s}  {tails}  max |z|"
    )
    for k, name in enumerate(data.vitals):
        seen = np.asarray(data.values[..., k][data.masks[..., k] > 0.5], dtype=np.float64)
        mean, std = normalizer.mean[k], normalizer.std[k]
        q25, median, q75 = np.percentile(seen, [25, 50, 75])
        z = np.abs(seen - mean) / std
        tail_share = "  ".join(f"{100 * np.mean(z > t):6.3f}%" for t in TAIL_Z)
        iqr_ratio = f"{std / (q75 - q25):7.2f}" if q75 > q25 else f"{'-':>7s}"
        print(
            f"{name:8s} {seen.size:9d} {mean:8.2f} {std:7.2f} {median:8.2f} {q75 - q25:7.2f} {iqr_ratio} "
            f"{(median - mean) / std:17.3f}  {tail_share}  {z.max():7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
