"""Synthetic creative writing: a short line on a topic.

Reward = a rule-based quality gate (length window, topic present, no degenerate repetition)
times novelty against the other responses to the same prompt. Novelty pays for range, which is
what RL on verifiable domains tends to take away (see RESEARCH.md section 7).
"""

from __future__ import annotations

import random

from counterpoint.rollout.records import Prompt, Score

TOPICS = ("sea", "moon", "rain", "forest", "city", "fire", "snow", "river", "wind", "stone")
ADJECTIVES = ("pale", "quiet", "wild", "old", "bright", "cold", "soft", "dark", "green", "slow")
VERBS = ("sings", "waits", "burns", "drifts", "breaks", "sleeps", "turns", "falls", "hums", "glows")
NOUNS = ("light", "dream", "song", "shadow", "road", "heart", "night", "glass", "bird", "door")
PLACES = ("at dawn", "in the dark", "by the shore", "over the hill", "all night", "far away")

MIN_WORDS, MAX_WORDS = 4, 14


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


def quality_gate(text: str, topic: str) -> tuple[bool, str]:
    """Pass/fail with the reason: length window, topic present, no degenerate repetition."""
    words = text.lower().replace(",", " ").split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False, f"length {len(words)} words outside [{MIN_WORDS}, {MAX_WORDS}]"
    if topic not in words:
        return False, "topic missing"
    if any(w1 == w2 for w1, w2 in zip(words, words[1:])):
        return False, "immediate repetition"
    if max(words.count(w) for w in set(words)) > 3:
        return False, "a word repeated more than 3 times"
    return True, "ok"


def _trigrams(text: str) -> set[str]:
    t = " ".join(text.lower().split())
    return {t[i : i + 3] for i in range(max(1, len(t) - 2))}


def novelty(texts: list[str]) -> list[float]:
    """1 - mean character-trigram Jaccard similarity to the other texts of the group."""
    grams = [_trigrams(t) for t in texts]
    out = []
    for i, gi in enumerate(grams):
        sims = [len(gi & gj) / max(1, len(gi | gj)) for j, gj in enumerate(grams) if j != i]
        out.append(1.0 - sum(sims) / len(sims) if sims else 1.0)
    return out


class CreativeDomain:
    name = "creative"

    def make(self, rng: random.Random, prompt_id: str) -> tuple[Prompt, str]:
        topic, mood = rng.choice(TOPICS), rng.choice(ADJECTIVES)
        prompt = Prompt(self.name, prompt_id, f"Write a {mood} line about the {topic}.\nLine:", {"topic": topic})
        return prompt, " " + _line(rng, topic)

    def score_group(self, prompt: Prompt, responses: list[str]) -> list[Score]:
        lines = [r.strip().split("\n")[0] for r in responses]
        novel = novelty(lines)
        scores = []
        for line, nov in zip(lines, novel):
            passed, reason = quality_gate(line, prompt.reference["topic"])
            reward = nov if passed else 0.0
            scores.append(Score(reward, None, {"gate": reason, "novelty": round(nov, 4)}))
        return scores
