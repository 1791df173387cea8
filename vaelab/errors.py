"""The one exception type for mistakes a user can make (bad file, bad config, bad data).

The CLI prints these as a single line and exits non-zero; anything else is a bug and keeps its
traceback.
"""

import dataclasses
import math


class VaelabError(Exception):
    """A user-facing error; the message names the file, dataset or config key and the problem."""


def check(condition: bool, key: str, problem: str) -> None:
    """A setting's check: ``config <key>: <problem>`` when ``condition`` fails.

    Every Config dataclass checks its own fields with this in ``__post_init__``, so the same line
    reaches a CLI user (``model.latent_dim``) and a Python caller of the class.
    """
    if not condition:
        raise VaelabError(f"config {key}: {problem}")


def check_finite(config, section: str) -> None:
    """Every float field of a Config dataclass is finite (``config <section>.<field>: must be finite``).

    Inf passes the range checks (lr > 0, beta >= 0) but no run can use it; each Config calls this at
    the end of its ``__post_init__``, after its own checks.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float):
            check(math.isfinite(value), f"{section}.{f.name}", f"must be finite, got {value}")
