"""``python experiments/collapse_sweep/summarize.py SWEEP_DIR``: the figures the README quotes.

From the sweep's run directories (vaelab.results.load_runs) and its study: trials by state and
where they were pruned; the Pareto front; how each searched setting moves each objective and the
factor recovery (Spearman rank correlation over the complete trials); and whether beta did
anything: the trials whose KL sat under the free-bits floor in every dimension (beta_inactive).
"""

from __future__ import annotations

import sys
from pathlib import Path

from vaelab.analysis import pareto_mask
from vaelab.results import load_runs
from vaelab.sweeps.config import SweepConfig

PARAMS = ["loss.beta", "loss.free_bits", "schedule.cycle_epochs", "model.base_channels"]
OUTCOMES = ["kl", "latent_spread", "recon_mse", "active_units", "factor_r2_mean"]


def main(sweep_dir: str) -> int:
    runs = load_runs(Path(sweep_dir))
    factor_cols = [c for c in runs.columns if c.startswith("factor_r2.")]
    runs["factor_r2_mean"] = runs[factor_cols].mean(axis=1)
    print(f"{len(runs)} trials: {runs['status'].value_counts().to_dict()}")
    pruned = runs[runs["status"] == "pruned"]
    if len(pruned):
        print(f"pruned at epochs {sorted(pruned['pruned_epoch'].astype(int))}")
    ok = runs[runs["status"] == "ok"]
    print(
        f"\ncomplete trials: KL {ok['kl'].min():.1f}-{ok['kl'].max():.1f} nats, active units {ok['active_units'].min()}-{ok['active_units'].max()} of {ok['latent_dim'].max()}"
    )
    floor = ok["loss.free_bits"] * ok["latent_dim"]
    print(f"KL / (free bits x latent dim): median {(ok['kl'] / floor).median():.2f} (KL tracks the floor it is given)")
    inactive = ok[ok["beta_inactive"].astype(bool)]
    print(f"beta had no effect (every dimension under the free-bits floor) in {len(inactive)} of {len(ok)} complete trials", end="")
    print(f"; those have free bits {inactive['loss.free_bits'].min():.2f}-{inactive['loss.free_bits'].max():.2f}" if len(inactive) else "")
    print("\nSpearman rank correlation, searched setting x outcome (complete trials):")
    print(ok[PARAMS + OUTCOMES].corr(method="spearman").loc[PARAMS, OUTCOMES].round(2).to_string())
    cols = ["sweep_trial", *PARAMS, "kl", "latent_spread", "recon_mse", "factor_r2_mean", "epochs_trained"]
    sweep = SweepConfig()  # the preset's objectives; every complete trial met its constraint here (KL <= 5 nats per dimension)
    front = ok[pareto_mask(ok, sweep.objectives, sweep.directions)]
    print(f"\nPareto front ({', '.join(f'{o} {d}' for o, d in zip(sweep.objectives, sweep.directions))}): {len(front)} trials")
    print(front[cols].sort_values("kl", ascending=False).round(4).to_string(index=False))
    print("\nbest factor recovery (mean factor R2, not an objective of the sweep):")
    print(ok.sort_values("factor_r2_mean", ascending=False)[cols].head(5).round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
