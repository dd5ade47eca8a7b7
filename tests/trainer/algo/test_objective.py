"""The learner's per-micro-batch objective: per-domain losses, bonus, global normalisation."""

import pytest
import torch

from counterpoint.rollout.records import Prompt, Sample, Score, ScoredSample
from counterpoint.trainer.algo.aggregation import counts_per_domain
from counterpoint.trainer.algo.losses import ppo_clip_loss
from counterpoint.trainer.algo.objective import DomainLoss, ObjectiveSettings, objective
from counterpoint.trainer.batch import build_batch


def _batch():
    g = torch.Generator().manual_seed(0)
    scored = []
    for i in range(8):
        domain = "math" if i < 4 else "creative"
        n = 2 + i % 3
        resp = torch.randint(3, 40, (n,), generator=g).tolist()
        s = Sample(Prompt(domain, f"{domain}{i // 2}", "t"), [1, 2], resp, [-1.0] * n, "x", "stop", 0)
        scored.append(ScoredSample(s, Score(float(i % 2) + 0.1 * i)))
    batch, _, _ = build_batch(scored, pad_id=0)
    return batch


def _settings(**losses):
    return ObjectiveSettings(
        losses={"math": DomainLoss("ppo_clip", {"clip_low": 0.2, "clip_high": 0.28}), **losses},
        aggregation="token-mean",
        domain_normalisation=True,
        norm_constant=4.0,
    )


def _inputs(batch, seed=1):
    g = torch.Generator().manual_seed(seed)
    logp_old = -torch.rand(batch.response_mask.shape, generator=g) * 2
    logp = (logp_old + 0.3 * torch.randn(batch.response_mask.shape, generator=g)).requires_grad_(True)
    entropy = torch.rand(batch.response_mask.shape, generator=g).requires_grad_(True)
    return logp, logp_old, entropy


def test_each_domain_gets_its_own_loss_and_equal_weight():
    batch = _batch()
    logp, old, entropy = _inputs(batch)
    settings = _settings(creative=DomainLoss("kl_cov", {"select_fraction": 0.2, "kl_coef": 1.0}))
    counts = counts_per_domain(batch.response_mask, batch.domain_ids, 2)
    loss, sums = objective(logp, entropy, batch, old, settings=settings, counts=counts, entropy_coefs=torch.zeros(2))
    mask = batch.response_mask
    math_rows = batch.domain_ids == batch.domains.index("math")
    ppo = ppo_clip_loss(
        logp[math_rows], old[math_rows], batch.advantages[math_rows, None].expand(-1, mask.shape[1]), 0.2, 0.28
    )
    math_mean = (ppo.loss * mask[math_rows]).sum() / mask[math_rows].sum()
    assert sums["math"]["selected_sum"] == 0
    n_creative = int(sums["creative"]["tokens"])
    assert sums["creative"]["selected_sum"] == max(1, int(0.2 * n_creative))  # KL-Cov's top-k
    assert sums["math"]["clipped_sum"] == float((ppo.clipped.float() * mask[math_rows]).sum())
    creative_mean = 2 * loss - math_mean  # equal domain weights: loss = (math + creative) / 2
    assert torch.isfinite(creative_mean)
    assert sums["math"]["tokens"] + sums["creative"]["tokens"] == float(mask.sum())


def test_micro_batches_sum_to_the_full_batch_objective():
    batch = _batch()
    logp, old, entropy = _inputs(batch)
    settings = _settings(creative=DomainLoss("ppo_clip", {"clip_low": 0.2, "clip_high": 0.28}))
    counts = counts_per_domain(batch.response_mask, batch.domain_ids, 2)
    coefs = torch.tensor([0.01, 0.0])
    full, _ = objective(logp, entropy, batch, old, settings=settings, counts=counts, entropy_coefs=coefs)
    parts = 0.0
    for rows in torch.arange(len(batch)).tensor_split(3):
        mb = batch.select(rows)
        w = mb.response_mask.shape[1]
        part, _ = objective(
            logp[rows][:, :w],
            entropy[rows][:, :w],
            mb,
            old[rows][:, :w],
            settings=settings,
            counts=counts,
            entropy_coefs=coefs,
        )
        parts = parts + part
    assert parts.item() == pytest.approx(full.item(), rel=1e-5)


def test_entropy_bonus_pushes_entropy_up_only_for_its_domain():
    batch = _batch()
    logp, old, entropy = _inputs(batch)
    settings = _settings(creative=DomainLoss("ppo_clip", {"clip_low": 0.2, "clip_high": 0.28}))
    counts = counts_per_domain(batch.response_mask, batch.domain_ids, 2)
    creative = batch.domains.index("creative")
    coefs = torch.zeros(2)
    coefs[creative] = 0.5
    loss, _ = objective(logp, entropy, batch, old, settings=settings, counts=counts, entropy_coefs=coefs)
    loss.backward()
    grad = entropy.grad
    rows = batch.domain_ids == creative
    assert bool((grad[rows][batch.response_mask[rows] > 0] < 0).all())  # minimising raises entropy
    assert bool((grad[~rows] == 0).all())
