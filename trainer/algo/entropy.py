"""Token log-probs and full-vocabulary entropies from logits. Pure: torch only."""

from __future__ import annotations

import torch


def logprobs_and_entropy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each target token and the entropy of the full next-token distribution.

    logits: (B, T, V) predicting position t+1 at t (already shifted to align with `targets`);
    targets: (B, T) token ids. Returns (logp, entropy), both (B, T), float32.
    H = logsumexp(z) - sum(softmax(z) * z), computed without materialising log-softmax twice.
    """
    logits = logits.float()
    log_norm = torch.logsumexp(logits, dim=-1)
    logp = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1) - log_norm
    probs = torch.softmax(logits, dim=-1)
    entropy = log_norm - (probs * logits).sum(dim=-1)
    return logp, entropy
