"""What the peers share: where their data comes from and the files they write beside the latents.

The scripts run as ``python experiments/peers/<peer>.py``, so this folder is on ``sys.path`` and
``from peer_data import ...`` finds this module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import h5py
import numpy as np

from vaelab.data.layer2 import Layer2Data, read_layer2, write_layer2
from vaelab.data.prepare import check_fit
from vaelab.errors import VaelabError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = os.environ.get("VAELAB_PHYSIONET2019", str(REPO.parent / "shared" / "data" / "physionet2019_setA.tar.gz"))
SEQ_LEN = 48  # the window: the first 48 h of every stay
RUN_FILE = "run.json"  # a peer's settings and figures
LIMIT_LAYER2_FILE = "layer2.h5"  # the --limit stays, for the probe table's --labels


def load_data(path: str, seq_len: int | None) -> tuple[Layer2Data, Path]:
    """(the stays, the Layer-2 file they came from): a Layer-2 .h5 as is, a PhysioNet 2019 source
    (a .tar.gz or a directory of .psv files) imported with vaelab's cached importer."""
    source = Path(path).expanduser()
    if source.suffix in (".h5", ".hdf5") or (source.is_file() and h5py.is_hdf5(source)):
        data = read_layer2(source)
        if seq_len is not None and seq_len != data.seq_len:
            raise VaelabError(f"{source}: holds {data.seq_len} h windows, not the --seq-len {seq_len} asked for")
        layer2 = source
    else:
        from vaelab.data.physionet2019 import import_physionet2019

        check_fit(seq_len or SEQ_LEN, str(source))  # before an import that takes minutes
        layer2 = import_physionet2019(source, seq_len=seq_len or SEQ_LEN, progress=sys.stderr.isatty())
        data = read_layer2(layer2)
    check_fit(data.seq_len, str(source))
    return data, layer2


def add_data_arguments(parser, outputs: str) -> None:
    """The options every peer takes: where the stays come from, how many, and where ``outputs`` go."""
    parser.add_argument("--data", default=DEFAULT_SOURCE, help=f"PhysioNet 2019 source or a Layer-2 .h5 file (default {DEFAULT_SOURCE})")
    parser.add_argument("--seq-len", type=int, default=None, help=f"window in hours of the import (default {SEQ_LEN}; a .h5 has its own)")
    parser.add_argument("--out", required=True, help=f"directory for {outputs}")
    parser.add_argument("--limit", type=int, default=None, help="only the first N stays (quick checks; not the comparison)")


def load_stays(args) -> tuple[Layer2Data, Path, int]:
    """(the stays ``--data`` / ``--seq-len`` / ``--limit`` ask for, their Layer-2 file, how many the file holds)."""
    if args.limit is not None and args.limit < 2:
        raise VaelabError(f"--limit must be >= 2 stays, got {args.limit}")
    data, layer2 = load_data(args.data, args.seq_len)
    n_all = data.n_patients
    if args.limit is not None:
        data = data.subset(np.arange(min(args.limit, n_all)))
    return data, layer2, n_all


def labels_file(out: Path, data: Layer2Data, layer2: Path, limit: int | None) -> Path:
    """The Layer-2 file ``vaelab.probe --labels`` needs for these stays: the source's, or with
    ``--limit`` the limited stays written to ``out``/:data:`LIMIT_LAYER2_FILE`."""
    if limit is None:
        return layer2
    write_layer2(out / LIMIT_LAYER2_FILE, data)
    return out / LIMIT_LAYER2_FILE
