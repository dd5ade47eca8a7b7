"""The child process in which `MathChecker` runs math-verify; started as
`python -m counterpoint.rollout.rewards.math_verify_worker MEMORY_BYTES`.

It exists so that a check can be given a deadline from any thread: math-verify's own timeouts use
`signal.alarm`, which only works on a main thread, so here they are off and the parent kills this
process instead when a check runs past its deadline. The protocol is one JSON line per batch in,
`[[gold, [candidate, ...]], ...]`, and one JSON line per check out,
`[verdict, reason, candidate_index, detail]`, written as each check finishes so the parent knows
which check a timeout belongs to. `reason` is None or the value of a `RewardError`
(`gold_unparsable`, `no_answer`, `verifier_crash`; the parent adds `wrong_answer` and its own
timeouts), `detail` a short text or None. Only the standard library and math-verify are
imported; nothing here is model output until it is parsed.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import resource
import signal
import sys
from functools import lru_cache

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # A check stuck in sympy never reads stdin again, so EOF cannot tell it that the parent died.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the prctl
        os._exit(1)


_LATEX_COMMAND = re.compile(r"\\[a-zA-Z]+")
_WORD = re.compile(r"[a-zA-Z]{2,}")


def answer_forms(text: str) -> list[str]:
    """The strings to hand math-verify for one answer, best first.

    math-verify reads LaTeX only inside delimiters, and reads "(0, 1]" without them as the number 1,
    so an answer with symbols, powers, LaTeX, a set or an interval is tried inside $...$ first. Prose is
    never wrapped: "$Hope this helps$" would parse as a product of letters.
    """
    s = text.strip().rstrip(".").strip()
    if not s or s.startswith("\\boxed") or "$" in s or _WORD.search(_LATEX_COMMAND.sub("", s)):
        return [s]
    if re.search(r"[a-zA-Z^\\([{]", s):  # symbols, powers, LaTeX, sets, intervals
        return [f"${s}$", s]
    return [s, f"${s}$"]


@lru_cache(maxsize=4096)
def parse_answer(text: str) -> tuple:
    from math_verify import parse

    for form in answer_forms(text):
        parsed = parse(form, parsing_timeout=None)
        if parsed:
            return tuple(parsed)
    return ()


def check(gold: str, candidates: list[str]) -> tuple[bool | None, str | None, int | None, str | None]:
    """math-verify's verdict on the first candidate that parses, the reason if there is none, the
    index of the candidate used, and a detail. Gold first: verify is not symmetric."""
    from math_verify import verify

    gold_parsed = parse_answer(gold)
    if not gold_parsed:
        return None, "gold_unparsable", None, f"gold {gold[:60]!r} does not parse"
    for i, candidate in enumerate(candidates):
        parsed = parse_answer(candidate)
        if parsed:
            return bool(verify(list(gold_parsed), list(parsed), timeout_seconds=None)), None, i, None
    return False, "no_answer", None, "no answer found" if not candidates else "no candidate parses"


def main() -> None:
    _die_with_parent()
    memory_bytes = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import logging

    logging.disable(logging.WARNING)  # math-verify warns on every call that its timeouts are off
    import math_verify  # noqa: F401  (import now, so "ready" means ready)

    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        for gold, candidates in json.loads(line):
            try:
                result = check(gold, candidates)
            except MemoryError:
                result = (None, "verifier_crash", None, "memory limit")
            except Exception as e:  # math-verify or sympy failing: no verdict, so our failure
                result = (None, "verifier_crash", None, f"{type(e).__name__}: {str(e)[:100]}")
            out.write(json.dumps(result) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
