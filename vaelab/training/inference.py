"""A trained model applied to patients: posterior means (embeddings) and reconstructions, in eval mode."""

from __future__ import annotations

import numpy as np
import torch

from ..data.batches import BatchSource, as_batch_source
from ..models.base import VAEBase, VAEOutput

EVAL_BATCH_SIZE = 256  # patients per forward pass at evaluation; the MI estimate has its own batch


def as_tensor(array: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32)).to(device)


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def posterior_outputs(model: VAEBase, source: BatchSource, batch_size: int = EVAL_BATCH_SIZE):
    """(batch, VAEOutput decoding the posterior mean) for every batch of ``source``, in its order."""
    model.eval()
    device = device_of(model)
    for batch in source.batches(batch_size):
        x, mask = batch
        yield batch, model.forward_output(as_tensor(x, device), as_tensor(mask, device), sample=False)


def encode_posterior(
    model: VAEBase, x: np.ndarray | BatchSource, mask: np.ndarray | None = None, batch_size: int = EVAL_BATCH_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances (N, latent_dim) in eval mode, in the source's order.

    ``x`` is an array (with ``mask``) or a batch source (no mask), e.g. a streamed Layer-2 file.
    """
    model.eval()
    device = device_of(model)
    mus, logvars = [], []
    with torch.no_grad():
        for xb, mb in as_batch_source(x, mask).batches(batch_size):
            mu, logvar = model.encode_distribution(as_tensor(xb, device), as_tensor(mb, device))
            mus.append(mu.cpu().numpy())
            logvars.append(logvar.cpu().numpy())
    return np.concatenate(mus), np.concatenate(logvars)


def to_numpy(output: VAEOutput) -> tuple[np.ndarray, list[np.ndarray]]:
    return output.recon.cpu().numpy(), [b.cpu().numpy() for b in output.branches]


def reconstruct(
    model: VAEBase, x: np.ndarray | BatchSource, mask: np.ndarray | None = None, batch_size: int = EVAL_BATCH_SIZE
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Reconstruction from the posterior mean (and per-branch outputs, empty for the LSTM)."""
    recons, branches = [], []
    for _, output in posterior_outputs(model, as_batch_source(x, mask), batch_size):
        recon, parts = to_numpy(output)
        recons.append(recon)
        branches.append(parts)
    per_branch = [np.concatenate([b[i] for b in branches]) for i in range(len(branches[0]))]
    return np.concatenate(recons), per_branch
