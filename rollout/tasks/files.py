"""Domains on the user's rows (`domains.<name>.source`): one class per kind, each scoring exactly as
that kind's built-in suites do, and `RowSource`, the seeded, checkpointable cursor over the rows.

- math: `reference["answer"]` from the answer field, checked with math-verify like the synthetic suite;
- code: the row's tests run in the sandbox like HumanEval (test source defining `check(candidate)`),
  or `[args, expected]` pairs like the synthetic suite; the program is the prompt completed by the
  response up to its first line at column 0;
- creative: the creative scorer, with the row's topic when the source maps one;
- python: the user's function (`rollout/rewards/plugin.py`) on (prompt, response, row).
"""

from __future__ import annotations

import random
from typing import Any

from counterpoint.rollout.data import load_rows
from counterpoint.rollout.records import Prompt, Score
from counterpoint.rollout.tasks.base import TaskSource
from counterpoint.rollout.tasks.creative import CreativeSuite
from counterpoint.rollout.tasks.humaneval import HumanEvalDomain, function_block
from counterpoint.rollout.tasks.math import _VerifiedMath


class _Rows:
    """What the file domains share: the source, and building one (prompt, demonstration) per row."""

    source: Any

    @property
    def suite(self) -> str:
        return self.source.type

    def item(self, row: dict, prompt_id: str) -> tuple[Prompt, str]:
        src = self.source
        demo = row[src.demonstration] if src.demonstration else ""
        return Prompt(self.name, prompt_id, row[src.prompt], self.reference(row)), demo

    def reference(self, row: dict) -> dict:
        raise NotImplementedError


class FileMath(_Rows, _VerifiedMath):
    """Math problems from the user's rows; the gold answer is the answer field, as a string."""

    def __init__(self, reward, *, name: str, source):
        super().__init__(reward, name=name)
        self.source = source

    def reference(self, row: dict) -> dict:
        return {"answer": str(row[self.source.answer]).strip()}


class FileCode(_Rows, HumanEvalDomain):
    """Functions to complete from the user's rows; reward = the fraction of the row's tests passed."""

    def __init__(self, reward, *, name: str, source):
        super().__init__(reward, name=name)
        self.source = source

    def reference(self, row: dict) -> dict:
        tests = row[self.source.tests]
        ref = {"entry": row[self.source.entry_point]}
        if isinstance(tests, str):
            ref["test"] = tests
        else:
            ref["tests"] = [[list(args), expected] for args, expected in tests]
        return ref

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        if "test" in prompt.reference:
            return super().score_group(prompt, responses)  # HumanEval's: check(candidate) in the sandbox
        from counterpoint.rollout.rewards.code_check import io_tests, run_many
        from counterpoint.rollout.rewards.sandbox.bwrap import check_sandbox

        if not self._sandbox_checked:
            check_sandbox(self.reward.sandbox)
            self._sandbox_checked = True
        tests = io_tests(prompt.reference["tests"])
        jobs = [(prompt.text + function_block(r), prompt.reference["entry"], tests) for r in responses]
        return run_many(jobs, self.reward.sandbox, self.reward.parallel_runs)


class FileCreative(_Rows, CreativeSuite):
    """Writing prompts from the user's rows, scored by the creative reward on the whole response."""

    def __init__(self, reward, *, name: str, source):
        super().__init__(reward, name=name)
        self.source = source

    def corpus(self) -> tuple[str, ...] | None:
        """The rows' demonstrations (for the fluency check's bigram model), when the source has them."""
        if self.source.demonstration is None:
            return None
        try:
            rows = load_rows(f"domains.{self.name}.source", "creative", self.source)
        except (OSError, ValueError):
            return None  # a reward worker on a node without the file: fluency falls back to "none"
        return tuple(row[self.source.demonstration] for _, row in rows.train)

    def reference(self, row: dict) -> dict:
        topic = row.get(self.source.topic) if self.source.topic else None
        return {"topic": str(topic).strip().lower() if topic else None}

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        return self.scorer.score(prompt.text, [r.strip() for r in responses], topic=prompt.reference["topic"])


class PluginDomain(_Rows):
    """The user's rows, scored by the user's function in a child process of the reward worker."""

    kind = "python"

    def __init__(self, reward, *, name: str, source, import_path: list[str] | None = None):
        self.name = name
        self.reward = reward
        self.source = source
        self.import_path = import_path
        self._runner = None

    @property
    def runner(self):
        if self._runner is None:
            from counterpoint.rollout.rewards.plugin import PluginRunner

            self._runner = PluginRunner(self.reward, self.import_path)
        return self._runner

    def warm_up(self) -> None:
        self.runner.warm_up()

    def reference(self, row: dict) -> dict:
        return {"row": row}

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        return [self.runner.call(prompt.text, r, prompt.reference["row"]) for r in responses]


FILE_DOMAINS = {"math": FileMath, "code": FileCode, "creative": FileCreative, "python": PluginDomain}
"""kind → the class of a domain on the user's rows."""


class RowSource(TaskSource):
    """Train prompts of a file domain in a seeded order, epoch after epoch; its held-out rows.

    The cursor counts prompts drawn; prompt k is row `order(k // n)[k % n]`, each epoch a fresh
    seeded shuffle, so a checkpoint stays one integer and a resumed run draws what it would have.
    """

    def __init__(self, domain: _Rows, seed: int, eval_size: int):
        self.domain = domain
        self.seed = seed
        self.cursor = 0
        rows = load_rows(f"domains.{domain.name}.source", domain.kind, domain.source)
        self._train = [domain.item(row, f"{domain.name}/train/{n}") for n, row in rows.train]
        self._eval = [domain.item(row, f"{domain.name}/eval/{n}") for n, row in rows.eval[:eval_size]]
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self._train)))
            random.Random(f"{self.seed}/{self.domain.name}/epoch/{epoch}").shuffle(order)
            self._orders = {epoch: order}  # one epoch at a time is all a cursor needs
        return self._orders[epoch]

    def probe_prompts(self, n: int) -> list[Prompt]:
        """A seeded sample of `n` training rows (all of them when there are fewer)."""
        rows = random.Random(f"{self.seed}/{self.domain.name}/probe").sample(self._train, min(n, len(self._train)))
        return [p for p, _ in rows]

    def next_batch(self, n: int) -> list[tuple[Prompt, str]]:
        out = []
        for _ in range(n):
            epoch, position = divmod(self.cursor, len(self._train))
            out.append(self._train[self._order(epoch)[position]])
            self.cursor += 1
        return out
