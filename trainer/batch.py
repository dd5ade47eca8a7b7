"""Turn scored samples into the learner's tensors. Pure: torch only.

Samples are grouped by prompt, advantages computed per group (domains never mix inside a group),
and sequences laid out right-padded as prompt + response. Everything per token is aligned with
the *targets* (position t holds the prediction of token t+1), so tensors are (B, T-1).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields

import torch

from counterpoint.rollout.records import ScoredSample
from counterpoint.trainer.advantages import grpo_advantages


@dataclass
class TrainBatch:
    input_ids: torch.Tensor
    """(B, T) prompt + response token ids, right-padded."""
    attention_mask: torch.Tensor
    """(B, T) 1 on real tokens."""
    response_mask: torch.Tensor
    """(B, T-1) 1.0 where the target is a response token."""
    advantages: torch.Tensor
    """(B,) one advantage per response."""
    engine_logprobs: torch.Tensor
    """(B, T-1) the rollout engine's log-prob of each response target (0 elsewhere)."""
    domain_ids: torch.Tensor
    """(B,) index into `domains`."""
    domains: list[str]

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, rows: list[int] | torch.Tensor) -> "TrainBatch":
        """A sub-batch of `rows`, trimmed to its own longest sequence."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        width = int(self.attention_mask[rows].sum(dim=1).max()) if len(rows) else 1
        picked = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = value[rows]
                if value.dim() == 2:
                    value = value[:, : width - (0 if f.name in ("input_ids", "attention_mask") else 1)]
            picked[f.name] = value
        return TrainBatch(**picked)

    def shard(self, rank: int, world_size: int) -> "TrainBatch":
        """Rows rank, rank+world, ...: interleaving spreads domains and lengths over ranks."""
        return self.select(list(range(rank, len(self), world_size)))


def group_by_prompt(scored: list[ScoredSample]) -> list[list[ScoredSample]]:
    groups: OrderedDict[str, list[ScoredSample]] = OrderedDict()
    for s in scored:
        groups.setdefault(s.sample.prompt.prompt_id, []).append(s)
    return list(groups.values())


def build_batch(scored: list[ScoredSample], pad_id: int, epsilon: float = 1e-6) -> tuple[TrainBatch, list[ScoredSample], torch.Tensor]:
    """Returns the batch, the samples in batch row order and their advantages (B,)."""
    groups = group_by_prompt(scored)
    sizes = {len(g) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"every prompt group must have the same size, got sizes {sorted(sizes)}")
    rewards = torch.tensor([[s.score.reward for s in g] for g in groups], dtype=torch.float32)
    advantages = grpo_advantages(rewards, epsilon).reshape(-1)
    rows = [s for g in groups for s in g]
    domains = sorted({s.domain for s in rows})
    width = max(len(s.sample.prompt_token_ids) + len(s.sample.response_token_ids) for s in rows)
    n = len(rows)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    response_mask = torch.zeros((n, width - 1))
    engine_lp = torch.zeros((n, width - 1))
    for i, s in enumerate(rows):
        p, r = s.sample.prompt_token_ids, s.sample.response_token_ids
        input_ids[i, : len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
        attention[i, : len(p) + len(r)] = 1
        response_mask[i, len(p) - 1 : len(p) + len(r) - 1] = 1.0
        engine_lp[i, len(p) - 1 : len(p) + len(r) - 1] = torch.tensor(s.sample.response_logprobs)
    domain_ids = torch.tensor([domains.index(s.domain) for s in rows], dtype=torch.long)
    batch = TrainBatch(input_ids, attention, response_mask, advantages, engine_lp, domain_ids, domains)
    return batch, rows, advantages
