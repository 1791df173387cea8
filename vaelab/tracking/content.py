"""What every tracker logs, under the same names: the flattened config, the epoch's scalars, the final metrics."""

from __future__ import annotations

import json
import numbers
import re

from ..io import flatten

FINAL_PREFIX = "final/"  # final metrics are "final/<metrics.json key>": history.csv has columns of the same names


def safe_key(name: str) -> str:
    """A name MLflow accepts as a metric or parameter key (letters, digits and ``_ - . / : space``)."""
    return re.sub(r"[^\w\-./: ]", "_", name)


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def epoch_scalars(row: dict) -> dict[str, float]:
    """A history.csv row's numeric columns but ``epoch``, which is the step."""
    return {safe_key(name): float(value) for name, value in row.items() if name != "epoch" and is_number(value)}


def final_metrics(result: dict) -> dict[str, float]:
    """metrics.json's numeric entries, nested ones included (``final/factor_r2/trend``); lists are left out."""
    flat = flatten(result, separator="/")
    return {safe_key(f"{FINAL_PREFIX}{name}"): float(value) for name, value in flat.items() if is_number(value)}


def text(value) -> str:
    """A config value as a parameter's text: JSON for lists and None, str otherwise."""
    if value is None or isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)
