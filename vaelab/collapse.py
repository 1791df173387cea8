"""What counts as a collapsed latent dimension: the one active-unit threshold.

Burda, Grosse & Salakhutdinov 2016 ("Importance Weighted Autoencoders", section 5.2): dimension u
is active when Var_x(E_q[z_u | x]), the variance across patients of its posterior mean, exceeds
0.01. The trainer's per-epoch count, the run metrics and the plots all use this one definition.
"""

from __future__ import annotations

import math

import numpy as np

ACTIVE_UNIT_THRESHOLD = 0.01
ACTIVE_STD_THRESHOLD = math.sqrt(ACTIVE_UNIT_THRESHOLD)  # the same cut-off as a standard deviation


def active_units(mu: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Number of dimensions of the posterior means ``mu`` (patients, latent_dim) whose variance
    across patients (ddof=0) exceeds ``threshold``."""
    return int(np.sum(np.var(np.asarray(mu, dtype=np.float64), axis=0) > threshold))
