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
from counterpoint.trainer.algo.advantages import compute_advantages, informative_groups
from counterpoint.trainer.algo.aggregation import counts_per_domain


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
    versions: torch.Tensor | None = None
    """(B,) the policy version that generated each row (zeros when not given)."""
    lag: torch.Tensor | None = None
    """(B,) how many updates older than the learner's that policy is (0: on-policy); set by the
    loop just before the update (`with_lag`), zeros until then."""

    def __post_init__(self):
        n = self.input_ids.shape[0]
        if self.versions is None:
            self.versions = torch.zeros(n, dtype=torch.long)
        if self.lag is None:
            self.lag = torch.zeros(n)

    def with_lag(self, learner_version: int) -> TrainBatch:
        """The batch as the learner at `learner_version` sees it: each row's lag behind it."""
        lag = (learner_version - self.versions).float()
        if bool((lag < 0).any()):
            raise ValueError(f"a row is newer ({int(self.versions.max())}) than the learner ({learner_version})")
        return TrainBatch(**{**{f.name: getattr(self, f.name) for f in fields(self)}, "lag": lag})

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, rows: list[int] | torch.Tensor) -> TrainBatch:
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

    def to(self, device) -> TrainBatch:
        """The same batch with every tensor on `device` (a no-op on the CPU)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return TrainBatch(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in moved.items()})

    def shard(self, rank: int, world_size: int) -> TrainBatch:
        """Rows rank, rank+world, ...: interleaving spreads domains and lengths over ranks."""
        return self.select(list(range(rank, len(self), world_size)))


def group_by_prompt(scored: list[ScoredSample]) -> list[list[ScoredSample]]:
    groups: OrderedDict[str, list[ScoredSample]] = OrderedDict()
    for s in scored:
        groups.setdefault(s.sample.prompt.prompt_id, []).append(s)
    return list(groups.values())


def build_batch(
    scored: list[ScoredSample],
    pad_id: int,
    advantage: str = "grpo",
    *,
    drop_uninformative: bool = False,
    **advantage_params: float,
) -> tuple[TrainBatch, list[ScoredSample], torch.Tensor]:
    """Returns the batch, the samples in batch row order and their advantages (B,).

    `advantage` names an estimator in `advantages.ADVANTAGES`. `drop_uninformative` is DAPO's
    dynamic-sampling filter: groups whose rewards are all equal (zero advantage) are left out
    (the returned rows and advantages still cover every sample, for metrics).
    """
    groups = group_by_prompt(scored)
    sizes = {len(g) for g in groups}
    if len(sizes) != 1:
        raise ValueError(f"every prompt group must have the same size, got sizes {sorted(sizes)}")
    rewards = torch.tensor([[s.score.reward for s in g] for g in groups], dtype=torch.float32)
    advantages = compute_advantages(advantage, rewards, **advantage_params).reshape(-1)
    rows = [s for g in groups for s in g]
    batch = _layout(rows, advantages, pad_id)
    if drop_uninformative:
        keep = informative_groups(rewards).repeat_interleave(rewards.shape[1])
        if bool(keep.any()):
            batch = batch.select(torch.nonzero(keep).flatten())
    return batch, rows, advantages


def encode_demonstration(tokenizer, prompt: str, demo: str) -> tuple[list[int], list[int]]:
    """Prompt and response token ids, tokenized apart exactly as the rollout engine sees them;
    the response ends with EOS."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r = tokenizer(demo + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    return p, r


def build_sft_batch(rows: list[ScoredSample], pad_id: int) -> TrainBatch:
    """Demonstrations laid out like rollouts (advantage 1 each), for an SFT step."""
    return _layout(rows, torch.ones(len(rows)), pad_id)


def _layout(rows: list[ScoredSample], advantages: torch.Tensor, pad_id: int) -> TrainBatch:
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
    versions = torch.tensor([s.sample.policy_version for s in rows], dtype=torch.long)
    return TrainBatch(input_ids, attention, response_mask, advantages, engine_lp, domain_ids, domains, versions)


@dataclass
class UpdatePlan:
    """How one rollout batch is cut for the learner: `mini_batches` optimizer steps per epoch,
    each mini-batch sharded over the ranks, with the mini-batch's global counts per domain."""

    shards: list[list[TrainBatch]]
    """shards[rank][k]: rank's rows of mini-batch k."""
    counts: list[tuple[torch.Tensor, torch.Tensor]]
    """counts[k]: (tokens (D,), sequences (D,)) of mini-batch k over every rank."""


def plan_update(batch: TrainBatch, mini_batches: int, world_size: int) -> UpdatePlan:
    """Rows k, k+K, ... form mini-batch k (interleaved, so each holds every domain); each
    mini-batch is sharded over ranks the same way. A shard may be empty (a small filtered
    batch); its rank still joins the step with a zero loss."""
    minis = [batch.select(list(range(k, len(batch), mini_batches))) for k in range(mini_batches)]
    counts = [counts_per_domain(m.response_mask, m.domain_ids, len(batch.domains)) for m in minis]
    shards = [[m.shard(r, world_size) for m in minis] for r in range(world_size)]
    return UpdatePlan(shards, [(t.float(), s.float()) for t, s in counts])
