"""WritingBench (545 English writing tasks with per-task rubrics) as a creative suite.

The tasks ship in `inspect-evals` (install it with --no-deps: only its data file is read, at
inspect_evals/writingbench/benchmark_all.jsonl). Each has a query and a checklist of five
criteria, each with a 1-10 scale; the Chinese half of the set is left out. The prompt is the query;
`Prompt.reference["rubric"]` is the checklist as text for the judge. There is no demonstration
beyond a placeholder: WritingBench has no reference answers, so this suite is for RL and eval, not
for the warm start. Far beyond the tiny model: a suite for larger models with a real judge.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from counterpoint.rollout.records import Prompt, Score
from counterpoint.rollout.tasks.creative import LONG_TEXT_GATE, CreativeSuite

_CJK = re.compile(r"[\u3400-\u9fff]")


def _data_file() -> Path:
    spec = find_spec("inspect_evals")
    if spec is None:
        raise ModuleNotFoundError("the writingbench suite needs `pip install --no-deps inspect-evals==0.28.0`")
    return Path(spec.submodule_search_locations[0]) / "writingbench" / "benchmark_all.jsonl"


def rubric_text(checklist: list[dict]) -> str:
    """The checklist as numbered criteria, each with its description and score bands."""
    parts = []
    for n, item in enumerate(checklist, 1):
        bands = "; ".join(f"{band}: {item[band]}" for band in ("1-2", "3-4", "5-6", "7-8", "9-10") if band in item)
        parts.append(f"{n}. {item['name']}: {item['criteria_description']}\n   {bands}")
    return "\n".join(parts)


@lru_cache(maxsize=1)
def writingbench_tasks() -> tuple[dict, ...]:
    """The English tasks: index, domain1, domain2, query, rubric."""
    out = []
    with open(_data_file()) as f:
        for line in f:
            row = json.loads(line)
            if _CJK.search(row["query"]):
                continue
            out.append(
                {
                    "index": row["index"],
                    "domain1": row["domain1"],
                    "domain2": row["domain2"],
                    "query": row["query"],
                    "rubric": rubric_text(row["checklist"]),
                }
            )
    return tuple(out)


class WritingBenchDomain(CreativeSuite):
    """A WritingBench task; reward from a `CreativeScorer` (gate for long texts, novelty, judge)."""

    suite = "writingbench"
    GATE = LONG_TEXT_GATE

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        task = rng.choice(writingbench_tasks())
        reference = {k: task[k] for k in ("index", "domain1", "domain2", "rubric")}
        return Prompt(self.name, prompt_id, task["query"], reference), ""

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        texts = [r.strip() for r in responses]
        return self.scorer.score(prompt.text, texts, rubric=prompt.reference["rubric"])
