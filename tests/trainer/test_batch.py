"""Batch layout: target-aligned masks, engine log-probs in place, shards that cover every row."""

import pytest
import torch

from counterpoint.rollout.records import Prompt, Sample, Score, ScoredSample
from counterpoint.trainer.batch import build_batch, plan_update


def _scored(pid, domain, prompt_ids, resp_ids, reward):
    p = Prompt(domain, pid, "t")
    s = Sample(p, prompt_ids, resp_ids, [-0.5 - 0.1 * i for i in range(len(resp_ids))], "x", "stop", 0)
    return ScoredSample(s, Score(reward))


def test_layout_and_advantages():
    scored = [
        _scored("a", "math", [1, 2], [3, 4, 5], 1.0),
        _scored("a", "math", [1, 2], [6], 0.0),
        _scored("b", "creative", [7], [8, 9], 0.5),
        _scored("b", "creative", [7], [8], 0.5),
    ]
    batch, rows, adv = build_batch(scored, pad_id=0)
    assert batch.input_ids.tolist()[0] == [1, 2, 3, 4, 5]
    assert batch.input_ids.tolist()[1] == [1, 2, 6, 0, 0]
    # targets are ids[1:]; the response of row 0 is predicted at positions 1..3
    assert batch.response_mask[0].tolist() == [0, 1, 1, 1]
    assert batch.response_mask[1].tolist() == [0, 1, 0, 0]
    assert batch.response_mask[2].tolist() == [1, 1, 0, 0]
    assert torch.allclose(batch.engine_logprobs[0, 1:4], torch.tensor([-0.5, -0.6, -0.7]))
    assert adv.tolist()[2:] == [0.0, 0.0]  # equal rewards: no signal
    assert adv[0] > 0 > adv[1]
    assert [batch.domains[i] for i in batch.domain_ids] == ["math", "math", "creative", "creative"]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_cover_all_rows_once(world):
    scored = [_scored(f"p{i // 2}", "math", [1], [2] * (1 + i % 3), float(i % 2)) for i in range(10)]
    batch, _, _ = build_batch(scored, pad_id=0)
    shards = [batch.shard(r, world) for r in range(world)]
    assert sum(len(s) for s in shards) == 10
    assert sum(float(s.response_mask.sum()) for s in shards) == float(batch.response_mask.sum())
    assert sorted(float(a) for s in shards for a in s.advantages) == sorted(float(a) for a in batch.advantages)


def test_unequal_groups_rejected():
    scored = [
        _scored("a", "math", [1], [2], 1.0),
        _scored("a", "math", [1], [2], 0.0),
        _scored("b", "math", [1], [2], 0.0),
    ]
    with pytest.raises(ValueError, match="same size"):
        build_batch(scored, pad_id=0)


@pytest.mark.parametrize("minis, world", [(1, 2), (2, 2), (3, 1)])
def test_update_plan_covers_rows_and_counts_globally(minis, world):
    scored = [
        _scored(f"p{i // 2}", "math" if i < 8 else "creative", [1], [2] * (1 + i % 3), float(i % 2)) for i in range(12)
    ]
    batch, _, _ = build_batch(scored, pad_id=0)
    plan = plan_update(batch, minis, world)
    assert len(plan.shards) == world and all(len(s) == minis for s in plan.shards)
    assert sum(len(plan.shards[r][k]) for r in range(world) for k in range(minis)) == 12
    for k in range(minis):
        tokens, seqs = plan.counts[k]
        shard_tokens = sum(float(plan.shards[r][k].response_mask.sum()) for r in range(world))
        assert float(tokens.sum()) == shard_tokens
        assert float(seqs.sum()) == sum(len(plan.shards[r][k]) for r in range(world))
    tiny = plan_update(batch.select([0, 1]), 2, 2)  # fewer rows than shards: some are empty
    assert sorted(len(tiny.shards[r][k]) for r in range(2) for k in range(2)) == [0, 0, 1, 1]
