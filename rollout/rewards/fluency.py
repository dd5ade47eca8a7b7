"""Fluency of creative writing: does it read as language? Two checks, both needed.

1. **Known words** (order-blind): the share of a text's words that are English words of some
   frequency in `wordfreq`'s list (Zipf frequency ≥ `min_zipf`; the list ships inside the package,
   nothing is downloaded). A word is letters only (an apostrophe inside is fine): emoji, digits
   and look-alike letters from other scripts ("ѕеа" in Cyrillic) are not words. Random letters
   ("fararararar", "qzvbt") fail here.
2. **Order** (order-aware): the mean log-probability of the text's word sequence under a frozen
   reference model, which shuffled real words ("dawn at sings the sea pale") and looping phrases
   fail. Two reference models:
   - `bigram`: a word-bigram model fitted once, at the worker's start, on the suite's own
     demonstrations (the text the tiny policy was warm-started on), Dirichlet-smoothed towards
     wordfreq's unigram frequencies, so an unseen pair of common words costs less than a pair
     with a rare one. Microseconds a sample.
   - `lm`: the mean token log-likelihood under a causal LM folder read with plain transformers on
     CPU (e.g. the base weights a run trains from), batched, on one torch thread.

Plus a repetition check on the normalised words of short texts (punctuation stripped, so "the
sea! the sea?" repeats): the share of word bigrams that repeat an earlier one.

`FluencyScorer.score(texts)` returns one `Fluency` per text: passed or not with the reason, a
value in [0, 1] (the order score's place between the config's floor and full marks, times the
known-word share), and its parts. Pure apart from the lazy wordfreq import and the optional LM.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from counterpoint.rollout.config import FluencyConfig

_WORD = re.compile(r"^[a-z]+(?:'[a-z]+)?$")
_STRIP = '.,;:!?"()[]{}-—–…*_~`'
BOS, EOS = "<s>", "</s>"


def words_of(text: str) -> list[str]:
    """Lower-cased whitespace-separated tokens with surrounding punctuation stripped (empty ones dropped)."""
    out = []
    for raw in text.lower().split():
        w = raw.strip(_STRIP + "'")
        if w:
            out.append(w)
    return out


def is_word(token: str) -> bool:
    """Letters a-z only (an inner apostrophe allowed): not emoji, digits or other scripts."""
    return bool(_WORD.match(token))


@lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    """wordfreq's Zipf frequency of an English word (0 when unknown); cached."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en")


def known_share(tokens: list[str], min_zipf: float) -> float:
    """Share of `tokens` that are words with Zipf frequency ≥ `min_zipf` (0 for no tokens)."""
    if not tokens:
        return 0.0
    return sum(is_word(t) and zipf(t) >= min_zipf for t in tokens) / len(tokens)


def repeated_bigram_share(tokens: list[str]) -> float:
    """Share of word bigrams that repeat an earlier one."""
    grams = list(zip(tokens, tokens[1:]))
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


class BigramLM:
    """Word bigram model with Dirichlet smoothing towards a unigram prior:
    P(w | v) = (c(v, w) + α P₀(w)) / (c(v) + α), P₀ = ½ corpus unigram + ½ wordfreq frequency."""

    def __init__(self, corpus: Iterable[str], alpha: float = 2.0):
        self.alpha = alpha
        self.pairs: Counter = Counter()
        self.firsts: Counter = Counter()
        self.unigrams: Counter = Counter()
        for text in corpus:
            seq = [BOS, *words_of(text), EOS]
            self.pairs.update(zip(seq, seq[1:]))
            self.firsts.update(seq[:-1])
            self.unigrams.update(seq[1:])
        self.total = max(1, sum(self.unigrams.values()))

    def prior(self, word: str) -> float:
        corpus = self.unigrams[word] / self.total
        general = 10 ** (zipf(word) - 9) if is_word(word) else 0.0  # Zipf = log10 per billion words
        return max(0.5 * corpus + 0.5 * general, 1e-9)

    def mean_logprob(self, tokens: list[str]) -> float:
        """Mean natural-log probability per transition of `<s> tokens </s>`."""
        seq = [BOS, *tokens, EOS]
        total = 0.0
        for v, w in zip(seq, seq[1:]):
            total += math.log((self.pairs[(v, w)] + self.alpha * self.prior(w)) / (self.firsts[v] + self.alpha))
        return total / (len(seq) - 1)


class ReferenceLM:
    """Mean token log-likelihood of texts under a frozen causal LM (transformers, CPU, one thread),
    batched; loads on first use."""

    def __init__(self, model_dir: str, batch_size: int = 64, threads: int | None = 1):
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.threads = threads
        self._lock = threading.Lock()
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = Path(self.model_dir).expanduser()
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()

    def mean_logprobs(self, texts: list[str], prefix: str = "") -> list[float]:
        """Per text: the mean log-prob of its tokens after `prefix` (e.g. the prompt)."""
        import torch

        if not texts:
            return []
        with self._lock:
            if self._model is None:
                self._load()
            before = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                return self._score(texts, prefix)
            finally:
                torch.set_num_threads(before)

    def _score(self, texts: list[str], prefix: str) -> list[float]:
        import torch

        tok = self._tokenizer
        head = tok(prefix)["input_ids"] if prefix else []
        if not head:
            head = [self._model.config.bos_token_id or 0]
        limit = getattr(self._model.config, "max_position_embeddings", 2048)
        out: list[float] = [0.0] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                seqs = [(head + tok(texts[i])["input_ids"])[:limit] for i in idx]
                width = max(len(s) for s in seqs)
                ids = torch.full((len(seqs), width), pad, dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for row, s in enumerate(seqs):
                    ids[row, : len(s)] = torch.tensor(s)
                    mask[row, : len(s)] = 1
                logp = self._model(input_ids=ids, attention_mask=mask).logits[:, :-1].float().log_softmax(-1)
                token_logp = logp.gather(-1, ids[:, 1:, None])[..., 0]
                scored = mask[:, 1:].clone()
                scored[:, : len(head) - 1] = 0  # the prefix is context, not the text
                for row, i in enumerate(idx):
                    n = int(scored[row].sum())
                    out[i] = float((token_logp[row] * scored[row]).sum() / n) if n else -20.0
        return out


@dataclass(frozen=True)
class Fluency:
    """One text's fluency verdict."""

    passed: bool
    reason: str
    """"ok", or why it failed."""
    value: float
    """In [0, 1]: the known-word share times the order score's place between floor and full."""
    parts: dict = field(default_factory=dict)
    """known_share, order_logprob (None when off), repeated_bigram_share."""


REPEAT_CHECK_MAX_WORDS = 40
"""The repeated-pair check applies up to this many words: prose repeats "of the"; long texts that
loop are the gate's (`LONG_TEXT_GATE`'s repeated 4-grams)."""
ORDER_DEFAULTS = {"bigram": (-4.0, -2.5), "lm": (-3.0, -1.5), "none": (0.0, 1.0)}
"""(floor, full) of the order score per reference model, where the config leaves them None
(measured: see `FluencyConfig.order_floor`)."""


class FluencyScorer:
    """Fluency of texts per `FluencyConfig`; `corpus` (the suite's demonstrations) fits the bigram model."""

    def __init__(self, cfg: FluencyConfig = FluencyConfig(), corpus: Iterable[str] | None = None, lm=None):
        self.cfg = cfg
        floor, full = ORDER_DEFAULTS[cfg.order]
        self.order_floor = floor if cfg.order_floor is None else cfg.order_floor
        self.order_full = full if cfg.order_full is None else cfg.order_full
        if self.order_full <= self.order_floor:
            raise ValueError(f"fluency order_full ({self.order_full}) must be above order_floor ({self.order_floor})")
        self.bigram: BigramLM | None = None
        self.lm = lm
        if cfg.order == "bigram":
            if corpus is None:
                raise ValueError("fluency order 'bigram' needs a corpus (the suite's demonstrations)")
            self.bigram = BigramLM(corpus, cfg.bigram_alpha)
        elif cfg.order == "lm" and self.lm is None:
            if cfg.reference_model is None:
                raise ValueError("fluency order 'lm' needs reference_model (a causal-LM folder)")
            self.lm = ReferenceLM(cfg.reference_model, cfg.batch_size)

    def order_scores(self, texts: list[str], tokens: list[list[str]], prefix: str) -> list[float | None]:
        if self.cfg.order == "bigram":
            return [self.bigram.mean_logprob(t) for t in tokens]
        if self.cfg.order == "lm":
            return self.lm.mean_logprobs([" " + t.strip() for t in texts], prefix)
        return [None] * len(texts)

    def score(self, texts: list[str], prefix: str = "") -> list[Fluency]:
        """One verdict per text (batched: one LM pass over the list); `prefix` is the prompt the
        LM reads the text after (the bigram model ignores it)."""
        cfg = self.cfg
        tokens = [words_of(t) for t in texts]
        orders = self.order_scores(texts, tokens, prefix)
        out = []
        for toks, order in zip(tokens, orders):
            share = known_share(toks, cfg.min_zipf)
            repeat = repeated_bigram_share(toks) if len(toks) <= REPEAT_CHECK_MAX_WORDS else 0.0
            parts = {
                "known_share": round(share, 4),
                "order_logprob": None if order is None else round(order, 4),
                "repeated_bigram_share": round(repeat, 4),
            }
            if order is None:
                place = 1.0
            else:
                place = min(1.0, max(0.0, (order - self.order_floor) / (self.order_full - self.order_floor)))
            value = share * place
            if share < cfg.min_known_share:
                verdict = f"known words {share:.0%} < {cfg.min_known_share:.0%}"
            elif repeat > cfg.max_repeated_bigram_share:
                verdict = f"{repeat:.0%} of word pairs repeat"
            elif order is not None and order < self.order_floor:
                verdict = f"word order log-prob {order:.2f} < {self.order_floor:g}"
            else:
                verdict = "ok"
            out.append(Fluency(verdict == "ok", verdict, round(value, 4), parts))
        return out
