"""The learner's math on a GPU: the tiny Qwen2's forward, `logprobs_and_entropy` and `objective`
give the same loss and gradients on CUDA as on the CPU, within 1e-4.

The comparison needs a CUDA device: it carries the `gpu` marker and is skipped where
`torch.cuda.is_available()` is False. The CPU reference it compares against is checked on every
machine, so the comparison cannot pass vacuously (a zero gradient, no clipped token). The model
is built randomly initialised, as `trainer/tiny_model.py` builds it, with no tokenizer and no
model hub; the batch is laid out by `trainer/batch.py` from hand-built samples.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from counterpoint.rollout.records import Prompt, Sample, Score, ScoredSample
from counterpoint.trainer.algo.aggregation import counts_per_domain
from counterpoint.trainer.algo.entropy import logprobs_and_entropy
from counterpoint.trainer.algo.objective import DomainLoss, ObjectiveSettings, objective
from counterpoint.trainer.batch import TrainBatch, build_batch
from counterpoint.trainer.config import TinyModelConfig
from counterpoint.trainer.tiny_model import build_model

TOLERANCE = 1e-4
VOCAB = 64
EOS_ID = 0
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _Tokenizer:
    """What `build_model` reads of a tokenizer: its size and the EOS id."""

    def __len__(self) -> int:
        return VOCAB

    def convert_tokens_to_ids(self, token: str) -> int:
        return EOS_ID


def _model():
    cfg = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=64)
    return build_model(_Tokenizer(), cfg, seed=0).float()


def _batch() -> TrainBatch:
    """Two domains, groups of 2 with different rewards (non-zero advantages), ragged lengths."""
    g = torch.Generator().manual_seed(0)
    scored = []
    for i in range(8):
        domain = "math" if i < 4 else "creative"
        prompt = torch.randint(1, VOCAB, (3 + i % 2,), generator=g).tolist()
        response = torch.randint(1, VOCAB, (3 + i % 5,), generator=g).tolist()
        sample = Sample(
            Prompt(domain, f"{domain}/{i // 2}", "t"), prompt, response, [-1.5] * len(response), "x", "stop", 0
        )
        scored.append(ScoredSample(sample, Score(float(i % 2) + 0.1 * i)))
    batch, _, _ = build_batch(scored, pad_id=EOS_ID)
    return batch


SETTINGS = ObjectiveSettings(
    losses={
        "math": DomainLoss("ppo_clip", {"clip_low": 0.2, "clip_high": 0.28, "dual_clip": 3.0}),
        "creative": DomainLoss("gppo", {"clip_low": 0.2, "clip_high": 0.28, "dual_clip": 10.0}),
    },
    aggregation="token-mean",
    domain_normalisation=True,
    norm_constant=8.0,
    reference_kl_coef=0.05,
)


def _loss_and_grads(model, batch: TrainBatch, logp_old, logp_ref, device: str) -> dict:
    """One micro-batch as `Learner._micro_step` runs it on `device`: every input moved there,
    logits -> (logp, entropy) -> objective -> backward. Results come back on the CPU."""
    model = copy.deepcopy(model).to(device)
    mb = batch.to(device)
    counts = tuple(c.to(device) for c in counts_per_domain(batch.response_mask, batch.domain_ids, len(batch.domains)))
    logits = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask).logits[:, :-1]
    logp, entropy = logprobs_and_entropy(logits, mb.input_ids[:, 1:])
    loss, sums = objective(
        logp,
        entropy,
        mb,
        logp_old.to(device),
        settings=SETTINGS,
        counts=counts,
        entropy_coefs=torch.tensor([0.01, 0.02], device=device),
        logp_ref=logp_ref.to(device),
    )
    loss.backward()
    return {
        "loss": loss.detach().cpu(),
        "logp": logp.detach().cpu(),
        "entropy": entropy.detach().cpu(),
        "grads": {name: p.grad.detach().cpu() for name, p in model.named_parameters()},
        "sums": sums,
    }


@pytest.fixture(scope="module")
def case():
    """The model, the batch, the old and reference log-probs, and the CPU result."""
    model, batch = _model(), _batch()
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
        logp, _ = logprobs_and_entropy(logits, batch.input_ids[:, 1:])
    g = torch.Generator().manual_seed(1)
    # Off-policy enough that the ratio leaves [0.8, 1.28] on some tokens, so the clip and GPPO's
    # preserved gradient are both exercised; the same tensors go to both devices.
    logp_old = logp + 0.4 * torch.randn(logp.shape, generator=g)
    logp_ref = logp + 0.1 * torch.randn(logp.shape, generator=g)
    cpu = _loss_and_grads(model, batch, logp_old, logp_ref, "cpu")
    return model, batch, logp_old, logp_ref, cpu


def test_the_cpu_reference_is_a_real_loss_with_real_gradients(case):
    _, batch, _, _, cpu = case
    assert math.isfinite(float(cpu["loss"])) and float(cpu["loss"]) != 0.0
    assert set(cpu["sums"]) == {"math", "creative"}
    assert cpu["sums"]["math"]["clipped_sum"] > 0, "no token clipped: the PPO clip is not exercised"
    assert cpu["sums"]["creative"]["preserved_sum"] > 0, "no token preserved: GPPO's gradient is not exercised"
    for name, grad in cpu["grads"].items():
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, f"{name} gets no gradient"
    mask = batch.response_mask.bool()
    assert torch.isfinite(cpu["logp"][mask]).all() and (cpu["entropy"][mask] > 0).all()


@pytest.mark.gpu
@requires_cuda
def test_cuda_gives_the_cpu_loss_and_gradients(case):
    model, batch, logp_old, logp_ref, cpu = case
    gpu = _loss_and_grads(model, batch, logp_old, logp_ref, "cuda")
    close = {"atol": TOLERANCE, "rtol": TOLERANCE}

    torch.testing.assert_close(gpu["loss"], cpu["loss"], **close)
    mask = batch.response_mask.bool()
    torch.testing.assert_close(gpu["logp"][mask], cpu["logp"][mask], **close)
    torch.testing.assert_close(gpu["entropy"][mask], cpu["entropy"][mask], **close)
    assert gpu["grads"].keys() == cpu["grads"].keys()
    for name, grad in cpu["grads"].items():
        torch.testing.assert_close(gpu["grads"][name], grad, **close, msg=lambda m, name=name: f"{name}: {m}")
    for domain, sums in cpu["sums"].items():
        for key in ("tokens", "clipped_sum", "dual_clipped_sum", "preserved_sum"):
            assert gpu["sums"][domain][key] == sums[key], (domain, key)
