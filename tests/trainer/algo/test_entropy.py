"""Token entropy and log-probs of the sampled tokens against torch's Categorical."""

import math

import pytest
import torch

from counterpoint.trainer.algo.entropy import logprobs_and_entropy


def test_entropy_and_logprobs_against_reference():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, -1.0, 0.5]]])
    targets = torch.tensor([[1, 0]])
    logp, ent = logprobs_and_entropy(logits, targets)
    assert ent[0, 0].item() == pytest.approx(math.log(4), abs=1e-6)  # uniform over 4
    ref = torch.distributions.Categorical(logits=logits[0, 1])
    assert ent[0, 1].item() == pytest.approx(ref.entropy().item(), abs=1e-6)
    assert logp[0, 1].item() == pytest.approx(ref.log_prob(torch.tensor(0)).item(), abs=1e-6)
    assert logp[0, 0].item() == pytest.approx(-math.log(4), abs=1e-6)
