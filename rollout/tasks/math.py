"""Synthetic arithmetic word problems, checked with math-verify.

Sized for the built-in tiny model: short templated problems with two small operands, answered
with a bare number after "Answer:". A ~1M-parameter model learns these partly in a minute of
supervised warm start, which leaves RL the headroom it needs.
"""

from __future__ import annotations

import random

from counterpoint.rollout.records import Prompt, Score

NAMES = ("Ann", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Ivy")
ITEMS = ("apples", "pens", "coins", "books", "cards", "shells")


def _problem(rng: random.Random) -> tuple[str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    kind = rng.choices(("add", "sub", "mul"), weights=(2, 2, 1))[0]
    if kind == "add":
        a, b = rng.randrange(1, 20), rng.randrange(1, 20)
        return f"{name} has {a} {item} and gets {b} more. How many {item} now?", a + b
    if kind == "sub":
        a = rng.randrange(2, 30)
        b = rng.randrange(1, a)
        return f"{name} has {a} {item} and gives away {b}. How many {item} now?", a - b
    a, b = rng.randrange(2, 7), rng.randrange(2, 7)
    return f"{name} has {a} bags with {b} {item} each. How many {item} in all?", a * b


class MathDomain:
    """Arithmetic word problems; reward 1 when math-verify judges the answer equal to the gold."""

    name = "math"

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        question, answer = _problem(rng)
        prompt = Prompt(self.name, prompt_id, f"{question}\nAnswer:", {"answer": str(answer)})
        return prompt, f" {answer}"

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        gold = prompt.reference["answer"]
        return [self._score(gold, r) for r in responses]

    @staticmethod
    def _score(gold: str, response: str) -> Score:
        # math-verify's own timeouts use signal.alarm: call this on a process's main thread.
        from math_verify import parse, verify

        predicted = parse(response)
        if not predicted:
            return Score(0.0, False, {"error": "no answer found"})
        ok = bool(verify(parse(gold), predicted))  # gold first: verify is not symmetric
        return Score(1.0 if ok else 0.0, ok)
