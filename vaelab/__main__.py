"""``python -m vaelab [overrides]``: a run or a sweep (the CLI lives in vaelab.runs.cli);
``python -m vaelab dashboard SWEEP_DIR_OR_URL``: optuna-dashboard for a sweep (vaelab.dashboard)."""

import sys

from .runs.cli import main as run_main


def main() -> None:
    if sys.argv[1:2] == ["dashboard"]:
        from .dashboard import main as dashboard_main

        sys.exit(dashboard_main(sys.argv[2:]))
    run_main()


if __name__ == "__main__":
    main()
