"""``python -m vaelab [overrides]``: the CLI lives in vaelab.runs.cli."""

from .runs.cli import main

if __name__ == "__main__":
    main()
