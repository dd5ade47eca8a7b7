"""What every synthetic task domain provides, and the seeded, checkpointable source of its prompts.

A domain is one `TaskDomain`: it makes problem number `index` of a split deterministically from a
seed (so train and eval splits are reproducible and a cursor is just an integer), gives a correct
demonstration for the warm-start SFT pass, and scores a group of responses to one prompt. Rewards
sit next to the task that defines them. Its `name` is the domain's name in the config (any name;
its prompts carry it, and the seeds and the held-out split are keyed by it), its `kind` and `suite`
what it is (`rollout/domains.py` builds one from a config slice).
"""

from __future__ import annotations

import hashlib
import random
from typing import Protocol

from counterpoint.rollout.records import Prompt, Score


class TaskDomain(Protocol):
    name: str
    """The domain's name in the config, e.g. "math" or "algebra"."""
    kind: str
    """"math", "code" or "creative"."""
    suite: str
    """Where its problems come from, e.g. "synthetic"."""

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        """Draw one problem from `rng`; return it and a correct demonstration response."""
        ...

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        """Score the G responses sampled for one prompt (creative novelty needs the whole group)."""
        ...


def problem_rng(seed: int, domain: str, split: str, index: int) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so this is stable across processes.
    return random.Random(f"{seed}/{domain}/{split}/{index}")


EVAL_SHARE = 8
"""One prompt text in EVAL_SHARE is reserved for evaluation and never trained on."""


def is_eval_text(domain: str, text: str) -> bool:
    """Whether a prompt text belongs to the held-out side; fixed by its hash, not by the seed, so
    no seed or cursor position can ever put an eval prompt into training."""
    return int.from_bytes(hashlib.sha256(f"{domain}\n{text}".encode()).digest()[:8], "big") % EVAL_SHARE == 0


class TaskSource:
    """Yields train prompts of one domain from a deterministic cursor; holds its eval split.

    Prompt texts are split by hash (`is_eval_text`): train draws skip held-out texts and eval
    draws keep only them, so the eval split stays held out even for domains with few distinct texts.
    """

    def __init__(self, domain: TaskDomain, seed: int, eval_size: int):
        self.domain = domain
        self.seed = seed
        self.cursor = 0
        self._eval = self._draw("eval", 0, eval_size, want_eval=True)[0]

    def _make(self, split: str, index: int) -> tuple[Prompt, str]:
        rng = problem_rng(self.seed, self.domain.name, split, index)
        return self.domain.make(rng, f"{self.domain.name}/{split}/{index}")

    def _draw(self, split: str, start: int, n: int, want_eval: bool) -> tuple[list[tuple[Prompt, str]], int]:
        out: list[tuple[Prompt, str]] = []
        index = start
        while len(out) < n:
            if index - start > 100 * n + 1000:
                side = "held-out" if want_eval else "training"
                raise RuntimeError(f"domain {self.domain.name} yields almost no {side} prompts; widen its generator")
            item = self._make(split, index)
            index += 1
            if is_eval_text(self.domain.name, item[0].text) == want_eval:
                out.append(item)
        return out, index

    def next_batch(self, n: int) -> list[tuple[Prompt, str]]:
        """The next `n` train problems (prompt, demonstration), advancing the cursor."""
        out, self.cursor = self._draw("train", self.cursor, n, want_eval=False)
        return out

    def eval_prompts(self) -> list[Prompt]:
        return [p for p, _ in self._eval]

    def probe_prompts(self, n: int) -> list[Prompt]:
        """`n` fixed prompts of the training side (never of the held-out split) for choosing
        between schedules (the bwt policy's transfer probes), so a choice never peeks at eval."""
        return [p for p, _ in self._draw("probe", 0, n, want_eval=False)[0]]

    def state_dict(self) -> dict:
        return {"cursor": self.cursor, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise ValueError(
                f"task cursor for {self.domain.name} was saved with seed {state['seed']}, config has {self.seed}"
            )
        self.cursor = int(state["cursor"])
