"""``python -m vaelab.report SWEEP_DIR``: (re)write a sweep's report, kept at this path; the code
lives in vaelab.sweeps.report."""

import sys

from .sweeps.report import main, write_sweep_report

__all__ = ["main", "write_sweep_report"]

if __name__ == "__main__":
    sys.exit(main())
