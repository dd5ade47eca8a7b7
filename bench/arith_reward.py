"""The benchmark's reward, shared by both sides (stdlib only, so either virtualenv imports it).

1.0 when the integer right after "A:" equals a + b, else 0.0. The prompt ends in "A:", so the
integer is the completion's leading one; a completion that repeats the whole "Q: ... A: n" line
is read after its own first "A:" the same way.
"""

from __future__ import annotations

import re

_LEADING_INT = re.compile(r"\s*(-?\d+)(?!\d)")


def arith_score(prompt: str, completion: str, answer: int | str) -> float:
    """1.0 when the exact integer after the first "A:" of prompt + completion equals `answer`."""
    text = prompt + completion
    _, sep, after = text.partition("A:")
    if not sep:
        return 0.0
    match = _LEADING_INT.match(after)
    return float(match is not None and int(match.group(1)) == int(answer))


def counterpoint_reward(prompt: str, response: str, row: dict) -> float:
    """Counterpoint `python` domain reward (`arith_reward:counterpoint_reward`)."""
    return arith_score(prompt, response, row["answer"])


def trl_reward(prompts: list, completions: list, answer: list, **kwargs) -> list[float]:
    """TRL reward function: the dataset's `answer` column arrives as a keyword argument."""
    return [arith_score(p, c, a) for p, c, a in zip(prompts, completions, answer, strict=True)]
