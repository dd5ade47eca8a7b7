"""Math domains, all checked with math-verify (gold first) under a per-check deadline.

Three suites share one reward (`MathChecker`, a child process with timeouts that work from any
thread):
- `MathDomain`, the default: synthetic arithmetic word problems sized for the built-in tiny model,
  short templated problems with two small operands answered with a bare number after "Answer:".
  A ~1M-parameter model learns these partly in a minute of supervised warm start, which leaves RL
  the headroom it needs.
- `GsmDomain`: GSM8K-style word problems from reasoning-gym's seeded `gsm_symbolic` generator.
- `ChampDomain`: competition problems from the CHAMP data set (those whose answer math-verify
  reads in full: 125 of 270).
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from counterpoint.rollout.config import MathReward
from counterpoint.rollout.records import Prompt, Score
from counterpoint.rollout.rewards.math_check import shared_checker

NAMES = ("Ann", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Ivy")
ITEMS = ("apples", "pens", "coins", "books", "cards", "shells")
BOXED_INSTRUCTION = "Solve it step by step, then write the final answer as \\boxed{...}."


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


class _VerifiedMath:
    """The reward of every math suite: 1 when the response's answer equals `reference["answer"]`.

    `name` is the domain's name in the config (what its prompts carry); `reward` its reward section.
    """

    kind = "math"

    def __init__(self, reward: MathReward = MathReward(), *, name: str = "math"):
        self.name = name
        self.reward = reward

    def warm_up(self) -> None:
        """Start the checker's child processes (a reward worker calls this at start-up)."""
        shared_checker(self.reward).warm_up()

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        # One round-trip to the checker's child process for the whole group.
        gold = prompt.reference["answer"]
        return shared_checker(self.reward).check([(gold, r) for r in responses])


class MathDomain(_VerifiedMath):
    """Synthetic arithmetic word problems (the default suite)."""

    suite = "synthetic"

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        question, answer = _problem(rng)
        prompt = Prompt(self.name, prompt_id, f"{question}\nAnswer:", {"answer": str(answer)})
        return prompt, f" {answer}"


class GsmDomain(_VerifiedMath):
    """GSM8K-style problems from reasoning-gym's `gsm_symbolic` generator, one seeded draw each.

    The demonstration is the generator's worked solution ending in the boxed answer.
    """

    suite = "gsm"

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        import reasoning_gym  # 4 s to import: only when this suite is used

        item = reasoning_gym.create_dataset("gsm_symbolic", size=1, seed=rng.randrange(2**31))[0]
        answer = str(item["answer"])
        steps = re.sub(r"\n?####.*$", "", item["metadata"]["answer_cot"].strip(), flags=re.DOTALL)
        text = f"Question: {item['question']}\n{BOXED_INSTRUCTION}\nSolution:"
        return Prompt(
            self.name, prompt_id, text, {"answer": answer}
        ), f" {steps}\nThe final answer is \\boxed{{{answer}}}."


def _champ_file() -> Path:
    spec = find_spec("champ_dataset")
    if spec is None:
        raise ModuleNotFoundError("the champ suite needs `pip install champ-dataset==1.0.0`")
    return Path(spec.submodule_search_locations[0]) / "dataset_files" / "v0.json"


def _whole_answer_parses(answer: str) -> bool:
    """Whether math-verify reads the whole answer (many CHAMP answers are prose, e.g. "It is not
    possible", or parse only in part, e.g. "2^n/(n+1)" without $...$ read as 2)."""
    from counterpoint.rollout.rewards.math_verify_worker import parse_answer

    parsed = parse_answer(answer)
    if not parsed:
        return False
    said = parsed[-1].replace(" ", "").replace("{", "(").replace("}", ")")
    return said == answer.replace(" ", "")


@lru_cache(maxsize=1)
def champ_problems() -> tuple[tuple[str, str, str, str], ...]:
    """(identifier, category, problem, answer) of the CHAMP problems with a checkable answer.

    Parsing the golds here, in the caller's process and without a deadline, is safe: they are data
    shipped in a package, not model output.
    """
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    problems = json.loads(_champ_file().read_text())["problems"]  # 72 MB, ~1 s
    out = []
    for key, p in sorted(problems.items()):
        if re.search(r"[a-zA-Z]{2,}", re.sub(r"\\[a-zA-Z]+", "", p["_answer"])):
            continue  # prose
        if _whole_answer_parses(p["_answer"]):
            out.append((key, p["category"], p["_text"], p["_answer"]))
    return tuple(out)


class ChampDomain(_VerifiedMath):
    """Competition problems (number theory, inequalities, polynomials, sequences, combinatorics)
    from CHAMP. Far beyond the tiny model: an eval and a larger-model suite.

    The demonstration is the gold answer alone: CHAMP's solutions are step lists written for
    hints, not worked text that ends in the answer.
    """

    suite = "champ"

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        key, category, text, answer = rng.choice(champ_problems())
        prompt = Prompt(
            self.name,
            prompt_id,
            f"Problem: {text}\n{BOXED_INSTRUCTION}\nSolution:",
            {"answer": answer, "source": key, "category": category},
        )
        return prompt, f" The final answer is \\boxed{{{answer}}}."
