"""The creative `judge` reward end to end: a creative reward worker starts a real vLLM engine on a
judge model, sends each gate- and fluency-passing response to it with the configured prompt, and
parses the reply; a reply without a score is `judge_unparsable` (ours, counted in the step
metrics), never a silent 0.

The judge model is the session's tiny model (`model_cache`), 0.6M parameters trained on the
synthetic domains: FAR too small to judge writing. It replies a number or more words of a line,
whatever the writing, so this test shows plumbing, parsing and failure handling only, not
judgement. It also reads the same folder as the fluency check's `order: lm` reference model.
A few minutes on 2 shared cores (the tiny-model build, then the engine's start).
"""

from __future__ import annotations

import random

import pytest

from counterpoint.rollout.config import FluencyConfig
from counterpoint.rollout.engine import VLLM_ENV
from counterpoint.rollout.records import RewardError, Sample, ScoredSample
from counterpoint.rollout.rewards.fluency import FluencyScorer
from counterpoint.rollout.rewards.judge import Judge, parse_score
from counterpoint.rollout.rewards.reward_worker import RewardWorker
from counterpoint.trainer.metrics import sample_metrics

NUMBER_TEMPLATE = "{task} {response}\nScore from 1 to 10.\nAnswer:"
"""Ends like the math demonstrations ("Answer: 12"): the tiny model replies with digits."""
LINE_TEMPLATE = "{task} {response}\nWrite a pale line about the sea.\nLine:"
"""Ends like a creative prompt: the tiny model replies with words, which hold no score."""


def _check_outcomes(scores, replies):
    """Each judged score agrees with its reply: a score in range is the reward, none is ours."""
    for score, reply in zip(scores, replies):
        value = parse_score(reply)
        if value is None:
            assert score.error == RewardError.JUDGE_UNPARSABLE and score.infrastructure_failure
            assert score.reward == 0.0 and score.info["judge_dropped"] == reply[:60]
            assert "judge" not in score.info["parts"]
        else:
            assert score.error is None and score.reward == pytest.approx((value - 1) / 9, abs=1e-4)
            assert score.info["parts"]["judge"] == pytest.approx((value - 1) / 9, abs=1e-4)


@pytest.mark.integration
def test_judge_reward_through_a_real_vllm_engine(model_cache, monkeypatch):
    for key, value in VLLM_ENV.items():  # the engine sets these; keep them out of later tests
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(model_cache / "vllm"))
    judge_model = next((model_cache / "models").glob("tiny-*"))
    reward = {
        "type": "judge",
        "judge": {"model_path": str(judge_model), "max_tokens": 4, "kv_cache_mib": 16, "template": NUMBER_TEMPLATE},
    }
    worker = RewardWorker("poems", {"kind": "creative", "reward": reward})  # warm_up starts the engine
    scorer = worker.domain.scorer
    seen: list[str] = []
    engine_generate = scorer.judge.generate

    def recording(prompts):
        replies = engine_generate(prompts)
        seen.extend(replies)
        return replies

    scorer.judge.generate = recording
    prompt, demo = worker.domain.make(random.Random(0), "poems/train/0")
    topic = prompt.reference["topic"]
    group = [demo, f" the cold {topic} sings at dawn", f" {topic} qzvb lrop mnta wexu pfil"]
    [scores], seconds, *_ = worker.score([(prompt, group)])
    assert seconds > 0 and len(seen) == 2  # the nonsense failed fluency and never reached the judge
    assert scores[2].error == RewardError.FLUENCY_FAILED and scores[2].reward == 0.0
    assert all(isinstance(r, str) for r in seen)
    _check_outcomes(scores[:2], seen)
    assert "Score from 1 to 10" not in seen[0]  # the reply, not the prompt, came back

    # The same engine asked with a prompt after which the model writes words: no score in them.
    seen.clear()
    scorer.judge = Judge(recording, template=LINE_TEMPLATE)
    [words], *_ = worker.score([(prompt, group)])
    _check_outcomes(words[:2], seen)
    unparsable = [s for s in words if s.error == RewardError.JUDGE_UNPARSABLE]
    assert unparsable, f"the tiny model's replies {seen!r} all held a score"
    # ...and the step metrics count them as failures on our side
    rows = [ScoredSample(Sample(prompt, [1], [2], [-1.0], t, "stop", 0), s) for t, s in zip(group, words)]
    metrics = sample_metrics(rows)["poems"]
    assert metrics["reward_errors"]["judge_unparsable"] == len(unparsable)
    assert metrics["reward_failure_fraction"] == pytest.approx(len(unparsable) / 3)
    assert metrics["fluency_failed_fraction"] == pytest.approx(1 / 3)

    # The fluency check's other reference model, `order: lm`: the same folder read with plain
    # transformers, batched. Even this barely trained model puts random letters below its own lines.
    lm = FluencyScorer(FluencyConfig(order="lm", reference_model=str(judge_model)))
    verdicts = lm.score([demo, f" {topic} qzvb lrop mnta wexu pfil"], prefix=prompt.text)
    line, letters = (v.parts["order_logprob"] for v in verdicts)
    assert letters < line < 0 and not verdicts[1].passed
