"""The diversity measures of scored groups, taken in the reward worker that scored them: it already
holds the texts, the scores (which say which samples pass) and, for code, the programs and their
behaviour on the tests, so nothing extra crosses the cluster but a small dict per group.

Per group (rollout/diversity.py): the lexical measures always; for code, AST shapes (of the
programs the reward ran) and functional classes (programs grouped by their outcome on every test:
pass, or the returned value or exception); the semantic ones (MiniLM embeddings) for the first
`semantic_groups` groups of the call (None: all). The "effective" variants are taken over the
samples that pass: no reward error, and not wrong where the domain checks correctness.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from counterpoint.rollout.diversity import EAD_VOCAB_SIZE, TRAJECTORY_THRESHOLD, group_diversity
from counterpoint.rollout.records import Prompt, Score


def passes(score: Score) -> bool:
    """Whether a sample counts for the effective variants: its reward passed every check."""
    return score.error is None and score.correct is not False


class GroupMeasurer:
    """Measures groups for one domain; loads the sentence encoder on first semantic use."""

    def __init__(self, domain: Any, encoder: Any = None):
        """`domain`: the worker's task domain (a code domain's `candidate(prompt, response)` gives
        the program its reward ran); `encoder`: a `SentenceEncoder` (None: one made when needed)."""
        self.candidate = getattr(domain, "candidate", None)
        self._encoder = encoder

    @property
    def encoder(self):
        if self._encoder is None:
            from counterpoint.rollout.rewards.embeddings import SentenceEncoder

            self._encoder = SentenceEncoder()
        return self._encoder

    def measure(
        self, groups: Sequence[tuple[Prompt, list[str]]], scores: Sequence[list[Score]], options: Mapping | None
    ) -> tuple[list[dict], dict[str, float]]:
        """Per group its measures (empty dicts when `options` is None or disabled), and the
        seconds spent: {"total": all measures, "embedding": the sentence encoder's share}."""
        if not options or not options.get("enabled", True):
            return [{} for _ in groups], {"total": 0.0, "embedding": 0.0}
        started = time.perf_counter()
        embedding = 0.0
        semantic = options.get("semantic_groups")
        out, embedded = [], 0
        for (prompt, responses), group_scores in zip(groups, scores):
            vectors = None
            if len(responses) > 1 and (semantic is None or embedded < semantic):
                before = time.perf_counter()
                vectors = self.encoder.encode(responses)
                embedding += time.perf_counter() - before
                embedded += 1
            programs = [self.candidate(prompt, r) for r in responses] if self.candidate is not None else None
            tests = [s.info.get("tests") for s in group_scores]
            signatures = [tuple(t) for t in tests] if all(t is not None for t in tests) else None
            out.append(
                group_diversity(
                    responses,
                    passing=[passes(s) for s in group_scores],
                    vectors=vectors,
                    programs=programs,
                    signatures=signatures,
                    vocab_size=options.get("ead_vocab_size", EAD_VOCAB_SIZE),
                    threshold=options.get("trajectory_threshold", TRAJECTORY_THRESHOLD),
                )
            )
        return out, {"total": time.perf_counter() - started, "embedding": embedding}
