"""Task generators (seeded, held-out eval) and the math and creative checkers."""

import random

import pytest

from counterpoint.rollout.domains import build_domain
from counterpoint.rollout.tasks import TaskSource
from counterpoint.rollout.tasks.base import is_eval_text
from counterpoint.rollout.tasks.creative import CreativeDomain, novelty, quality_gate
from counterpoint.rollout.tasks.math import MathDomain


@pytest.mark.parametrize("name", ["math", "code", "creative"])
def test_sources_are_seeded_and_eval_is_held_out(name):
    a = TaskSource(build_domain(name), seed=3, eval_size=16)
    b = TaskSource(build_domain(name), seed=3, eval_size=16)
    batch_a, batch_b = a.next_batch(50), b.next_batch(50)
    assert [p.text for p, _ in batch_a] == [p.text for p, _ in batch_b]
    assert len({p.prompt_id for p, _ in batch_a}) == 50
    eval_texts = {p.text for p in a.eval_prompts()}
    assert all(is_eval_text(name, t) for t in eval_texts)
    assert not eval_texts & {p.text for p, _ in a.next_batch(400)}
    c = TaskSource(build_domain(name), seed=4, eval_size=16)
    assert [p.text for p, _ in c.next_batch(50)] != [p.text for p, _ in batch_a]


@pytest.mark.parametrize("name", ["math", "code", "creative"])
def test_the_probe_split_is_fixed_and_never_held_out(name):
    a = TaskSource(build_domain(name), seed=3, eval_size=16)
    probes = a.probe_prompts(16)
    assert len(probes) == 16 and [p.text for p in probes] == [p.text for p in a.probe_prompts(16)]
    assert not any(is_eval_text(name, p.text) for p in probes)
    assert not {p.text for p in probes} & {p.text for p in a.eval_prompts()}
    assert all(p.prompt_id.startswith(f"{name}/probe/") for p in probes)
    cursor = a.state_dict()
    a.probe_prompts(16)
    assert a.state_dict() == cursor  # drawing probes moves no training cursor


def test_cursor_state_round_trip():
    a = TaskSource(MathDomain(), seed=1, eval_size=4)
    a.next_batch(7)
    b = TaskSource(MathDomain(), seed=1, eval_size=4)
    b.load_state_dict(a.state_dict())
    assert [p.text for p, _ in a.next_batch(5)] == [p.text for p, _ in b.next_batch(5)]
    with pytest.raises(ValueError, match="seed"):
        TaskSource(MathDomain(), seed=2, eval_size=4).load_state_dict(a.state_dict())


def test_math_demonstrations_are_correct_and_checker_rejects_wrong():
    dom = MathDomain()
    rng = random.Random(0)
    for i in range(30):
        prompt, demo = dom.make(rng, f"m{i}")
        wrong = str(int(prompt.reference["answer"]) + 1)
        scores = dom.score_group(prompt, [demo, f" {wrong}", " banana", ""])
        assert [s.correct for s in scores] == [True, False, False, False]
        assert [s.reward for s in scores] == [1.0, 0.0, 0.0, 0.0]


def test_math_equivalent_forms():
    dom = MathDomain()
    from counterpoint.rollout.records import Prompt

    p = Prompt("math", "x", "q", {"answer": "12"})
    assert [s.correct for s in dom.score_group(p, [" 12.0", " 12 apples", " \\boxed{12}", " 21"])] == [
        True,
        True,
        True,
        False,
    ]


def test_creative_gate_and_novelty():
    assert quality_gate("the pale sea sings at dawn", "sea") == (True, "ok")
    assert quality_gate("the moon sings", "sea")[0] is False  # too short
    assert quality_gate("the pale moon sings at dawn", "sea") == (False, "topic missing")
    assert quality_gate("the sea sea sings at dawn", "sea") == (False, "immediate repetition")
    same = novelty(["the pale sea sings", "the pale sea sings"])
    assert same == [0.0, 0.0]
    varied = novelty(["the pale sea sings at dawn", "a cold wind over the sea"])
    assert all(v > 0.5 for v in varied)


def test_creative_rewards_pay_for_range():
    dom = CreativeDomain()
    prompt, demo = dom.make(random.Random(0), "c0")
    topic = prompt.reference["topic"]
    copies = dom.score_group(prompt, [demo] * 4)
    varied = dom.score_group(
        prompt,
        [
            f" the {a} {topic} {v} far away"
            for a, v in [("pale", "sings"), ("wild", "burns"), ("cold", "sleeps"), ("green", "turns")]
        ],
    )
    assert all(s.reward == 0.0 for s in copies)  # identical samples: no novelty
    assert all(s.reward > 0.2 for s in varied)
    assert dom.score_group(prompt, [" nothing here at all today"])[0].info["gate"] == "topic missing"
