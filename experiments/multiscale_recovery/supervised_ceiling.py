"""How much of each factor can vaelab's encoder read from these data at all? (issue 8)

Trains the multi-scale encoder *supervised*, straight on the true factors (standardized, MSE),
and reports held-out R^2 per factor: a practical ceiling for what an unsupervised latent could
carry, set by the data (noise, missingness, Poisson episodes, personal baselines) and the
encoder, not by the VAE objective. Same data, normalization and patient split as a default run
(``prepare_data``: 80 % train / 20 % held out); 10 % of the training patients pick the epoch.

    python experiments/multiscale_recovery/supervised_ceiling.py [--seq-len 168] [--n-patients 600] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import r2_score

from vaelab.builder import prepare_data
from vaelab.data.synthetic import generate_synthetic
from vaelab.models.multiscale import MultiScaleEncoder


def fit_one(prepared, names: list[str], seed: int, epochs: int, batch_size: int = 64) -> dict[str, float]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = prepared.data
    y = np.stack([data.factors[n] for n in names], axis=1)
    train_all, test = prepared.train_idx, prepared.val_idx
    rng.shuffle(train_all := train_all.copy())
    n_stop = max(len(train_all) // 10, 2)
    stop, train = train_all[:n_stop], train_all[n_stop:]
    y_mean, y_std = y[train].mean(0), y[train].std(0)
    target = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)
    x, masks = torch.as_tensor(prepared.x), torch.as_tensor(prepared.masks)
    encoder = MultiScaleEncoder(data.n_vitals, data.seq_len, latent_dim=len(names))
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)

    def predict(rows):
        encoder.eval()
        with torch.no_grad():
            return encoder(x[rows], masks[rows])[0]

    best, best_state = float("inf"), None
    for _ in range(epochs):
        encoder.train()
        order = rng.permutation(train)
        for start in range(0, len(order) - 1, batch_size):  # no batch of one
            rows = order[start:start + batch_size]
            loss = torch.nn.functional.mse_loss(encoder(x[rows], masks[rows])[0], target[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        stop_loss = torch.nn.functional.mse_loss(predict(stop), target[stop]).item()
        if stop_loss < best:
            best, best_state = stop_loss, {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder.load_state_dict(best_state)
    prediction = predict(test).numpy() * y_std + y_mean
    return {n: float(r2_score(y[test, j], prediction[:, j])) for j, n in enumerate(names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=168)
    parser.add_argument("--n-patients", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prepared = prepare_data(generate_synthetic(args.n_patients, args.seq_len, seed=0), seed=0)
    names = list(prepared.data.factors)
    scores = [fit_one(prepared, names, seed, args.epochs) for seed in args.seeds]
    print(f"# supervised multi-scale encoder -> true factors; {args.n_patients} patients x {args.seq_len} h, "
          f"{len(prepared.val_idx)} held out, {args.epochs} epochs, seeds {args.seeds}")
    print("| factor | held-out R2 (mean ± sd) |\n|---|---|")
    for name in names:
        values = [s[name] for s in scores]
        print(f"| {name} | {np.mean(values):.3f} ± {np.std(values):.3f} |")


if __name__ == "__main__":
    main()
