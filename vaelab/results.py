"""``python -m vaelab.results`` and ``from vaelab.results import load_runs``: the user's entry to the
run tables, kept at this path; the code lives in vaelab.analysis."""

import sys

from . import analysis
from .analysis import *  # noqa: F403 - this module is vaelab.analysis under the user's old name
from .analysis.tables import main

__all__ = [*analysis.__all__, "main"]

if __name__ == "__main__":
    sys.exit(main())
