"""Creative writing: synthetic one-line prompts, and the creative rewards shared by its suites.

Every kind starts from one quality score (`CreativeScorer.quality`):
- the gate is rule-based: a length window, the topic present, no degenerate repetition, not a copy
  of the prompt; a sample that fails it scores 0 whatever else it does;
- fluency (rollout/rewards/fluency.py): known English words and a word order a reference model
  finds likely; a sample that fails it scores 0 too, so nonsense with the topic word never pays;
- quality is then the weighted mean of fluency, topic fit and form.

The kind (`reward.type`) decides what else pays: `novelty` (quality × novelty against the group
and a rolling memory, optionally mixed with a judge; range, which RL on verifiable domains tends
to take away, docs/research.md section 7), `preference` (quality alone), `judge` (an LLM judge's
rubric score for fluent samples), `diversity_weighted` (quality × 1 − mean similarity to the
group). Each part goes to `Score.info["parts"]`.

`Score.error` says why a sample did not get the full reward it was due: `gate_failed` or
`fluency_failed` (the policy's), or `judge_unparsable` (ours: an infrastructure failure the step
metrics count).

The synthetic suite asks for a short line on a topic, sized for the built-in tiny model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from counterpoint.rollout.config import CreativeReward, CreativeRewardConfig
from counterpoint.rollout.records import Prompt, RewardError, Score
from counterpoint.rollout.rewards.fluency import FluencyScorer, words_of
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
    """The rule-based quality gate, and the form score's window. The defaults suit one short line."""

    min_words: int = MIN_WORDS
    max_words: int = MAX_WORDS
    max_same_word: int | None = 3
    """Most times one word may appear (None: no limit; long texts repeat "the")."""
    max_repeated_4gram_share: float | None = None
    """Largest share of word 4-grams that repeat an earlier one (None: not checked), for long texts
    that loop on a phrase."""
    ideal_words: tuple[int, int] = (5, 10)
    """Form: full marks for a length in this window, falling linearly to 0.5 at the gate's bounds."""
    min_distinct_share: float = 0.8
    """Form: full marks when at least this share of the words are distinct (less: proportionally less)."""


LONG_TEXT_GATE = GateRules(
    min_words=50,
    max_words=3000,
    max_same_word=None,
    max_repeated_4gram_share=0.3,
    ideal_words=(150, 2000),
    min_distinct_share=0.3,
)


def quality_gate(text: str, topic: str | None, rules: GateRules = GateRules()) -> tuple[bool, str]:
    """Pass/fail with the reason: length window, topic present (when given), no degenerate repetition.
    Words are compared with surrounding punctuation stripped ("sea!" is "sea")."""
    words = words_of(text)
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


def topic_fit(text: str, topic: str | None) -> float:
    """1 when the topic word is there once or twice (or there is no topic), 0.5 more often, 0 absent."""
    if topic is None:
        return 1.0
    n = words_of(text).count(topic)
    return 0.0 if n == 0 else 1.0 if n <= 2 else 0.5


def form_score(text: str, rules: GateRules) -> float:
    """Length inside `rules.ideal_words` (falling to 0.5 at the gate's bounds) × distinct words."""
    words = words_of(text)
    n, (lo, hi) = len(words), rules.ideal_words
    if not words:
        return 0.0
    if n < lo:
        length = 0.5 + 0.5 * max(0.0, (n - rules.min_words) / max(1, lo - rules.min_words))
    elif n > hi:
        length = 0.5 + 0.5 * max(0.0, (rules.max_words - n) / max(1, rules.max_words - hi))
    else:
        length = 1.0
    distinct = min(1.0, len(set(words)) / n / rules.min_distinct_share)
    return round(length * distinct, 4)


@lru_cache(maxsize=1)
def synthetic_corpus(size: int = 4000) -> tuple[str, ...]:
    """Demonstrations of the synthetic suite (a fixed seed): the language the tiny model is warm-started
    on, and what the fluency check's bigram model is fitted to."""
    rng = random.Random(20261201)
    return tuple(_line(rng, rng.choice(TOPICS)) for _ in range(size))


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


class CreativeScorer:
    """Scores a group of responses to one prompt under the reward kind of `reward` (its `type`):

    - quality = 0 if the gate or the fluency check fails (or the response copies the prompt), else
      the weighted mean of fluency, topic fit and form (`reward.quality`);
    - novelty: quality × (w_novelty·novelty + w_judge·judge) / (sum of the weights used);
    - preference: quality;
    - judge: (judge + w_quality·quality) / (1 + w_quality) for samples with quality > 0, else 0;
    - diversity_weighted: quality × (floor + (1 − floor) × (1 − mean similarity to the group)).

    `Score.info["parts"]` holds each part per sample. Holds the rolling memory, so one scorer
    belongs to one reward worker for the whole run.
    """

    def __init__(
        self,
        reward: CreativeRewardConfig = CreativeReward(),
        *,
        gate: GateRules = GateRules(),
        judge: Judge | None = None,
        encoder=None,
        corpus: tuple[str, ...] | None = None,
        fluency: FluencyScorer | None = None,
    ):
        if reward.judge_weight > 0 and judge is None:
            raise ValueError("a judge weight above 0 needs a judge")
        self.reward = reward
        self.type = reward.type
        self.gate = gate
        self.judge = judge if reward.judge_weight > 0 else None
        self.novelty_weight = getattr(reward, "novelty_weight", 0.0)
        self.judge_weight = reward.judge_weight
        self.novelty_kind = getattr(reward, "novelty_kind", None) or getattr(reward, "similarity", "lexical")
        self.novelty_reduce: Reduce = getattr(reward, "novelty_reduce", "mean")
        memory_size = getattr(reward, "memory_size", 0)
        if fluency is None and reward.fluency.enabled:
            fluency = FluencyScorer(reward.fluency, corpus if corpus is not None else synthetic_corpus())
        self.fluency = fluency
        if self.novelty_kind == "embedding":
            from counterpoint.rollout.rewards.embeddings import EMBEDDING_DIM, SentenceEncoder

            self.encoder = encoder or SentenceEncoder()
            self.memory = RollingMemory(memory_size, EMBEDDING_DIM, "float32")
        elif self.novelty_kind == "lexical":
            self.encoder = None
            self.memory = RollingMemory(memory_size, MINHASH_SIZE, "uint64")
        else:
            raise ValueError(f"unknown novelty kind {self.novelty_kind!r}")

    def novelty(self, texts: list[str]) -> list[float]:
        """Novelty against the group and the memory (which the texts then join)."""
        if self.novelty_kind == "embedding":
            return embedding_novelty(self.encoder.encode(texts), self.memory, self.novelty_reduce)
        return lexical_novelty(texts, self.memory, self.novelty_reduce)

    def diversity(self, texts: list[str]) -> list[float]:
        """1 − mean similarity to the group's other samples (no memory)."""
        if self.novelty_kind == "embedding":
            return embedding_novelty(self.encoder.encode(texts), None, "mean")
        return lexical_novelty(texts, None, "mean")

    def quality(self, task: str, texts: list[str], topic: str | None) -> list[tuple[float, dict, RewardError | None]]:
        """(quality, info, error) per text: gate, prompt copy, fluency, then the weighted parts."""
        q = self.reward.quality
        prompt_grams = trigrams(task) if task else None
        verdicts = self.fluency.score(texts, prefix=task) if self.fluency is not None else [None] * len(texts)
        out = []
        for text, flu in zip(texts, verdicts):
            passed, reason = quality_gate(text, topic, self.gate)
            if passed and prompt_grams is not None:
                overlap = jaccard(trigrams(text), prompt_grams)
                if overlap > q.max_prompt_overlap:
                    passed, reason = False, f"copies the prompt (trigram overlap {overlap:.2f})"
            info: dict = {"gate": reason, "reward_type": self.type}
            parts = {"fluency": 1.0 if flu is None else flu.value, "topic": topic_fit(text, topic)}
            parts["form"] = form_score(text, self.gate)
            error = None if passed else RewardError.GATE_FAILED
            if flu is not None:
                info["fluency"] = flu.reason
                info["fluency_detail"] = flu.parts
                info["fluency_failed"] = not flu.passed
                if passed and not flu.passed:
                    error = RewardError.FLUENCY_FAILED
            weights = (
                (q.fluency_weight, parts["fluency"]),
                (q.topic_weight, parts["topic"]),
                (q.form_weight, parts["form"]),
            )
            total = sum(w for w, _ in weights)
            value = sum(w * v for w, v in weights) / total if total else 1.0
            parts["quality"] = round(value if error is None else 0.0, 4)
            info["parts"] = parts
            out.append((parts["quality"], info, error))
        return out

    def score(self, task: str, texts: list[str], topic: str | None = None, rubric: str | None = None) -> list[Score]:
        quality = self.quality(task, texts, topic)
        judged: list = [(None, None)] * len(texts)
        if self.judge is not None:
            passing = [i for i, (value, _, _) in enumerate(quality) if value > 0]  # failures need no judge
            for i, verdict in zip(passing, self.judge.score(task, [texts[i] for i in passing], rubric)):
                judged[i] = verdict
        if self.type == "novelty":
            extra = self.novelty(texts) if self.novelty_weight > 0 else [None] * len(texts)
        elif self.type == "diversity_weighted":
            extra = self.diversity(texts)
        else:
            extra = [None] * len(texts)
        return [self._combine(qual, j, x) for qual, j, x in zip(quality, judged, extra)]

    def _combine(self, quality: tuple, judged: tuple, extra: float | None) -> Score:
        value, info, error = quality
        parts = info["parts"]
        mix = []  # (weight, value) of the terms averaged beside (novelty) or instead of (judge) quality
        if self.type == "novelty" and extra is not None:
            parts["novelty"] = info["novelty"] = round(extra, 4)
            mix.append((self.novelty_weight, extra))
        if self.type == "diversity_weighted":
            parts["diversity"] = round(extra, 4)
        if self.judge is not None and error is None:
            judge_score, reply = judged
            if judge_score is None:
                info["judge_dropped"] = (reply or "")[:60]
                error = RewardError.JUDGE_UNPARSABLE
            else:
                parts["judge"] = info["judge"] = round(judge_score, 4)
                mix.append((self.judge_weight, judge_score))
        if value <= 0.0:
            reward = 0.0
        elif self.type == "preference":
            reward = value
        elif self.type == "diversity_weighted":
            floor = self.reward.diversity_floor
            reward = value * (floor + (1 - floor) * extra)
        elif self.type == "judge":
            mix.append((self.reward.quality_weight, value))
            total = sum(w for w, _ in mix)
            reward = sum(w * v for w, v in mix) / total if "judge" in parts and total else 0.0
        else:  # novelty: quality × the weighted mean of novelty and the judge
            total = sum(w for w, _ in mix)
            reward = value * (sum(w * v for w, v in mix) / total if total else 0.0)
        return Score(round(reward, 6), None, info, error)


def build_scorer(
    reward: CreativeRewardConfig, gate: GateRules = GateRules(), corpus: tuple[str, ...] | None = None
) -> CreativeScorer:
    """The scorer `reward` describes, with its judge (a vLLM engine in this process) when it has one."""
    judge = None
    if reward.judge is not None and reward.judge_weight > 0:
        from counterpoint.rollout.rewards.judge import build_judge

        judge = build_judge(reward.judge)
    return CreativeScorer(reward, gate=gate, judge=judge, corpus=corpus)


class CreativeSuite:
    """What the creative suites share: the user's domain name, the reward section, and a scorer
    built on first use (or at a reward worker's start-up), so a driver that only draws prompts never
    starts a judge."""

    kind = "creative"
    suite: str
    GATE = GateRules()
    """The quality gate of this suite's scorer."""

    def corpus(self) -> tuple[str, ...] | None:
        """Demonstrations the fluency check's bigram model is fitted to (None: the suite has none,
        and `fluency.order: bigram` falls back to "none" there)."""
        return None

    def __init__(
        self,
        reward: CreativeRewardConfig = CreativeReward(),
        *,
        name: str = "creative",
        scorer: CreativeScorer | None = None,
    ):
        self.name = name
        self.reward = reward
        self._scorer = scorer

    @property
    def scorer(self) -> CreativeScorer:
        if self._scorer is None:
            reward, corpus = self.reward, self.corpus()
            if corpus is None and reward.fluency.order == "bigram":
                reward = reward.model_copy(update={"fluency": reward.fluency.model_copy(update={"order": "none"})})
            self._scorer = build_scorer(reward, self.GATE, corpus)
        return self._scorer

    def warm_up(self) -> None:
        """Build the scorer now (a reward worker calls this): a judge that cannot start fails here."""
        self._scorer = self.scorer


class CreativeDomain(CreativeSuite):
    """A short line on a topic; reward from `CreativeScorer` on the response's first line."""

    suite = "synthetic"

    def corpus(self) -> tuple[str, ...]:
        return synthetic_corpus()

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        topic, mood = rng.choice(TOPICS), rng.choice(ADJECTIVES)
        prompt = Prompt(self.name, prompt_id, f"Write a {mood} line about the {topic}.\nLine:", {"topic": topic})
        return prompt, " " + _line(rng, topic)

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        lines = [r.strip().split("\n")[0] for r in responses]
        return self.scorer.score(prompt.text, lines, topic=prompt.reference["topic"])
