"""Creative writing: synthetic one-line prompts, and the creative reward shared by its suites.

Reward = quality gate × weighted mean of (novelty, judge):
- the gate is rule-based: a length window, the topic present, no degenerate repetition; a sample
  that fails it scores 0 whatever else it does;
- novelty pays for range, which RL on verifiable domains tends to take away (docs/research.md
  section 7): distance to the other samples of the group and to a rolling memory of the run's
  recent outputs, lexical (character trigrams, no model) or semantic (MiniLM embeddings);
- an LLM judge scores the response against a rubric (optional). Its weight is dropped for a
  sample whose judgement does not parse, and the weights are renormalised over what remains.

`Score.error` says why a sample did not get the full reward it was due: `gate_failed` (the
policy's) or `judge_unparsable` (ours: an infrastructure failure the step metrics count).

The synthetic suite asks for a short line on a topic, sized for the built-in tiny model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from counterpoint.rollout.config import CreativeReward
from counterpoint.rollout.records import Prompt, RewardError, Score
from counterpoint.rollout.rewards.judge import Judge
from counterpoint.rollout.rewards.novelty import (
    MINHASH_SIZE,
    Reduce,
    RollingMemory,
    embedding_novelty,
    jaccard,
    lexical_novelty,
    trigrams,
)

TOPICS = ("sea", "moon", "rain", "forest", "city", "fire", "snow", "river", "wind", "stone")
ADJECTIVES = ("pale", "quiet", "wild", "old", "bright", "cold", "soft", "dark", "green", "slow")
VERBS = ("sings", "waits", "burns", "drifts", "breaks", "sleeps", "turns", "falls", "hums", "glows")
NOUNS = ("light", "dream", "song", "shadow", "road", "heart", "night", "glass", "bird", "door")
PLACES = ("at dawn", "in the dark", "by the shore", "over the hill", "all night", "far away")

MIN_WORDS, MAX_WORDS = 4, 14


@dataclass(frozen=True)
class GateRules:
    """The rule-based quality gate. The defaults suit one short line."""

    min_words: int = MIN_WORDS
    max_words: int = MAX_WORDS
    max_same_word: int | None = 3
    """Most times one word may appear (None: no limit; long texts repeat "the")."""
    max_repeated_4gram_share: float | None = None
    """Largest share of word 4-grams that repeat an earlier one (None: not checked), for long texts
    that loop on a phrase."""


LONG_TEXT_GATE = GateRules(min_words=50, max_words=3000, max_same_word=None, max_repeated_4gram_share=0.3)


def quality_gate(text: str, topic: str | None, rules: GateRules = GateRules()) -> tuple[bool, str]:
    """Pass/fail with the reason: length window, topic present (when given), no degenerate repetition."""
    words = text.lower().replace(",", " ").split()
    if not rules.min_words <= len(words) <= rules.max_words:
        return False, f"length {len(words)} words outside [{rules.min_words}, {rules.max_words}]"
    if topic is not None and topic not in words:
        return False, "topic missing"
    if any(w1 == w2 for w1, w2 in zip(words, words[1:])):
        return False, "immediate repetition"
    if rules.max_same_word is not None and max(words.count(w) for w in set(words)) > rules.max_same_word:
        return False, f"a word repeated more than {rules.max_same_word} times"
    if rules.max_repeated_4gram_share is not None and len(words) >= 8:
        grams = list(zip(words, words[1:], words[2:], words[3:]))
        share = 1 - len(set(grams)) / len(grams)
        if share > rules.max_repeated_4gram_share:
            return False, f"{share:.0%} of its 4-grams repeat"
    return True, "ok"


def novelty(texts: list[str]) -> list[float]:
    """1 - mean character-trigram Jaccard similarity to the other texts of the group (no memory)."""
    grams = [trigrams(t) for t in texts]
    out = []
    for i, gi in enumerate(grams):
        sims = [jaccard(gi, gj) for j, gj in enumerate(grams) if j != i]
        out.append(1.0 - sum(sims) / len(sims) if sims else 1.0)
    return out


class CreativeScorer:
    """gate × (w_novelty·novelty + w_judge·judge) / (sum of the weights used), per sample, with the
    weights, novelty kind and memory of `reward` (the creative domain's reward section).

    Holds the rolling memory, so one scorer belongs to one reward worker for the whole run.
    """

    def __init__(
        self,
        reward: CreativeReward = CreativeReward(),
        *,
        gate: GateRules = GateRules(),
        judge: Judge | None = None,
        encoder=None,
    ):
        if reward.judge_weight > 0 and judge is None:
            raise ValueError("a judge weight above 0 needs a judge")
        self.reward = reward
        self.novelty_weight = reward.novelty_weight
        self.judge_weight = reward.judge_weight
        self.novelty_kind = reward.novelty_kind
        self.novelty_reduce: Reduce = reward.novelty_reduce
        self.gate = gate
        self.judge = judge
        if self.novelty_kind == "embedding":
            from counterpoint.rollout.rewards.embeddings import EMBEDDING_DIM, SentenceEncoder

            self.encoder = encoder or SentenceEncoder()
            self.memory = RollingMemory(reward.memory_size, EMBEDDING_DIM, "float32")
        elif self.novelty_kind == "lexical":
            self.encoder = None
            self.memory = RollingMemory(reward.memory_size, MINHASH_SIZE, "uint64")
        else:
            raise ValueError(f"unknown novelty kind {self.novelty_kind!r}")

    def novelty(self, texts: list[str]) -> list[float]:
        if self.novelty_kind == "embedding":
            return embedding_novelty(self.encoder.encode(texts), self.memory, self.novelty_reduce)
        return lexical_novelty(texts, self.memory, self.novelty_reduce)

    def score(self, task: str, texts: list[str], topic: str | None = None, rubric: str | None = None) -> list[Score]:
        gates = [quality_gate(t, topic, self.gate) for t in texts]
        novel = self.novelty(texts) if self.novelty_weight > 0 else [None] * len(texts)
        judged: list = [(None, None)] * len(texts)
        if self.judge is not None and self.judge_weight > 0:
            passing = [i for i, (ok, _) in enumerate(gates) if ok]  # a failed gate needs no judge
            for i, verdict in zip(passing, self.judge.score(task, [texts[i] for i in passing], rubric)):
                judged[i] = verdict
        return [self._combine(g, n, j) for g, n, j in zip(gates, novel, judged)]

    def _combine(self, gate: tuple[bool, str], nov: float | None, judged: tuple) -> Score:
        passed, reason = gate
        info: dict = {"gate": reason}
        error = None if passed else RewardError.GATE_FAILED
        parts = {}
        if nov is not None:
            parts["novelty"] = (self.novelty_weight, nov)
            info["novelty"] = round(nov, 4)
        if self.judge is not None and self.judge_weight > 0 and passed:
            judge_score, reply = judged
            if judge_score is None:
                info["judge_dropped"] = (reply or "")[:60]
                error = RewardError.JUDGE_UNPARSABLE
            else:
                parts["judge"] = (self.judge_weight, judge_score)
                info["judge"] = round(judge_score, 4)
        total_weight = sum(w for w, _ in parts.values())
        value = sum(w * v for w, v in parts.values()) / total_weight if total_weight else 0.0
        return Score(value if passed else 0.0, None, info, error)


def _line(rng: random.Random, topic: str) -> str:
    a, b = rng.sample(ADJECTIVES, 2)
    forms = (
        f"the {a} {topic} {rng.choice(VERBS)} {rng.choice(PLACES)}",
        f"a {a} {rng.choice(NOUNS)} {rng.choice(VERBS)} over the {topic}",
        f"{topic} and {rng.choice(NOUNS)}, {a} and {b}",
        f"my {rng.choice(NOUNS)} {rng.choice(VERBS)} like the {b} {topic}",
        f"under the {topic} the {a} {rng.choice(NOUNS)} {rng.choice(VERBS)}",
    )
    return rng.choice(forms)


def build_scorer(reward: CreativeReward, gate: GateRules = GateRules()) -> CreativeScorer:
    """The scorer `reward` describes, with its judge (a vLLM engine in this process) when it has one."""
    judge = None
    if reward.judge is not None and reward.judge_weight > 0:
        from counterpoint.rollout.rewards.judge import build_judge

        judge = build_judge(reward.judge)
    return CreativeScorer(reward, gate=gate, judge=judge)


class CreativeSuite:
    """What the creative suites share: the user's domain name, the reward section, and a scorer
    built on first use (or at a reward worker's start-up), so a driver that only draws prompts never
    starts a judge."""

    kind = "creative"
    suite: str
    GATE = GateRules()
    """The quality gate of this suite's scorer."""

    def __init__(
        self, reward: CreativeReward = CreativeReward(), *, name: str = "creative", scorer: CreativeScorer | None = None
    ):
        self.name = name
        self.reward = reward
        self._scorer = scorer

    @property
    def scorer(self) -> CreativeScorer:
        if self._scorer is None:
            self._scorer = build_scorer(self.reward, self.GATE)
        return self._scorer

    def warm_up(self) -> None:
        """Build the scorer now (a reward worker calls this): a judge that cannot start fails here."""
        self._scorer = self.scorer


class CreativeDomain(CreativeSuite):
    """A short line on a topic; reward from `CreativeScorer` on the response's first line."""

    suite = "synthetic"

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        topic, mood = rng.choice(TOPICS), rng.choice(ADJECTIVES)
        prompt = Prompt(self.name, prompt_id, f"Write a {mood} line about the {topic}.\nLine:", {"topic": topic})
        return prompt, " " + _line(rng, topic)

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        lines = [r.strip().split("\n")[0] for r in responses]
        return self.scorer.score(prompt.text, lines, topic=prompt.reference["topic"])
