"""Word and character n-gram statistics of a group of texts, computed once, and the lexical
measures over them: distinct-n and EAD counts, sentence BLEU and chrF with sacreBLEU's settings.

The machinery under `rollout/diversity.py` (which documents the measures and their costs): a port
of sacreBLEU's 13a tokenisation (`tokens`), integer-coded n-gram count matrices (`_ngrams`), and
`Group`, one group's statistics with the measures over any subset of its samples, so the
"effective" variants reuse them. The tests check the port and both scores against sacreBLEU.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

EAD_VOCAB_SIZE = 50_000
TRAJECTORY_THRESHOLD = 0.7
DISTINCT_ORDERS = (1, 2, 3, 4)
BLEU_ORDER = 4
CHRF_CHAR_ORDER = 6
CHRF_BETA = 2
_PAIR_BLOCK = 1 << 21  # count-matrix entries one block of chrF pairs may span


# sacreBLEU's 13a tokenisation (sacrebleu/tokenizers/tokenizer_13a.py and tokenizer_re.py, 2.x), ported
# so that its first rule, a space either side of each of these characters, runs as one str.translate: as
# sacreBLEU's re.sub with a group template it expands the template in Python at every match, every space
# included (about 2 µs a word). The tests check the port against sacreBLEU's tokenizer.
_13A_SPACED = [
    chr(c) for a, b in ((0x7B, 0x7E), (0x5B, 0x60), (0x20, 0x26), (0x28, 0x2B), (0x3A, 0x40)) for c in range(a, b + 1)
]
_13A_SPLIT = str.maketrans({c: f" {c} " for c in [*_13A_SPACED, "/"]})
_13A_RULES = (
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period and comma, unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period and comma, unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash preceded by a digit
)


def tokens(text: str) -> list[str]:
    """The words of `text` as BLEU sees them: sacreBLEU's 13a tokenisation as `sentence_bleu` applies
    it (trailing whitespace stripped; "<skipped>" and "-\\n" removed, newlines made spaces, four HTML
    entities decoded; punctuation split off words, except periods and commas within numbers and
    apostrophes; case kept), split on whitespace. distinct-n and EAD count n-grams of these."""
    line = text.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} ".translate(_13A_SPLIT)
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return line.split()


@dataclass(frozen=True)
class _Ngrams:
    """Counts of the n-grams of orders 1..max_order of N sequences: `counts` (N, V), the columns of
    order n being offsets[n-1]:offsets[n]; `lengths` (N,) the sequences' lengths."""

    counts: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    def order(self, n: int) -> np.ndarray:
        return self.counts[:, self.offsets[n - 1] : self.offsets[n]]

    def per_order(self, x: np.ndarray) -> np.ndarray:
        """Sums of x (..., V) over each order's columns → (..., max_order) int64."""
        out = np.zeros((*x.shape[:-1], len(self.offsets) - 1), dtype=np.int64)
        filled = np.flatnonzero(np.diff(self.offsets))  # reduceat cannot sum an empty segment
        if filled.size:
            out[..., filled] = np.add.reduceat(x, self.offsets[filled], axis=-1, dtype=np.int64)
        return out

    def totals(self) -> np.ndarray:
        """(N, max_order): how many n-grams of each order each sequence has."""
        orders = np.arange(len(self.offsets) - 1)
        return np.maximum(self.lengths[:, None] - orders[None, :], 0)


def _ngrams(seqs: list[np.ndarray], max_order: int, fast: bool = True) -> _Ngrams:
    """Count the n-grams (1..max_order) of integer sequences. Fast path: the symbols are renumbered
    1..A, an n-gram becomes the n-digit base-(A+1) integer of its symbols (no zero digit, so n-grams of
    different orders never collide and sort by order), and one `np.unique` numbers them all; when
    (A+1)^max_order does not fit in int64 (thousands of distinct symbols) Python dicts of tuples do."""
    n = len(seqs)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return _Ngrams(np.zeros((n, 0), np.uint8), np.zeros(max_order + 1, np.int64), lengths)
    flat = np.concatenate(seqs)
    symbols, digits = np.unique(flat, return_inverse=True)
    base = len(symbols) + 1
    row = np.repeat(np.arange(n), lengths)
    if fast and base**max_order < 2**63:
        digits = digits.astype(np.int64) + 1
        room = np.repeat(np.cumsum(lengths), lengths) - np.arange(total)  # symbols left in its sequence
        key = np.zeros(total, np.int64)
        keys, rows = [], []
        for order in range(1, max_order + 1):
            m = max(total - order + 1, 0)  # windows of this order in `flat`, some spanning two sequences
            key[:m] = key[:m] * base + digits[order - 1 : order - 1 + m]
            valid = room >= order
            keys.append(key[valid])
            rows.append(row[valid])
        uniq, col = np.unique(np.concatenate(keys), return_inverse=True)
        rows_all = np.concatenate(rows)
        offsets = np.searchsorted(uniq, np.array([base**k for k in range(max_order + 1)], dtype=np.int64))
        offsets[0] = 0
    else:
        rows_all, cols, offsets = [], [], [0]
        for order in range(1, max_order + 1):
            vocab: dict[tuple, int] = {}
            for i, seq in enumerate(seqs):
                symbols_i = seq.tolist()
                for k in range(len(symbols_i) - order + 1):
                    cols.append(offsets[-1] + vocab.setdefault(tuple(symbols_i[k : k + order]), len(vocab)))
                    rows_all.append(i)
            offsets.append(offsets[-1] + len(vocab))
        rows_all, col, offsets = np.array(rows_all), np.array(cols), np.array(offsets, dtype=np.int64)
    width = int(offsets[-1])
    counts = np.bincount(rows_all * width + col, minlength=n * width).reshape(n, width)
    # the narrowest unsigned type that holds them: the pairwise minima over chrF's columns read less memory
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if counts.max(initial=0) <= np.iinfo(t).max)
    counts = counts.astype(dtype)
    return _Ngrams(counts, offsets, lengths)


def _sentence_bleu(matches: np.ndarray, totals: np.ndarray, hyp_len: int, ref_len: int) -> float:
    """sacreBLEU's `BLEU.compute_bleu` with "exp" smoothing and effective order, in [0, 1]."""
    if not matches.any():
        return 0.0
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    log_sum, order, smooth = 0.0, 0, 1.0
    for m, t in zip(matches.tolist(), totals.tolist()):
        if t == 0:
            break
        order += 1
        if m == 0:
            smooth *= 2
            log_sum += math.log(1 / (smooth * t))
        else:
            log_sum += math.log(m / t)
    return brevity * math.exp(log_sum / order)


class Group:
    """One group's per-text statistics, each computed once on first use, and the measures over any
    subset of its samples (`idx`, an int array), so the effective variants reuse them."""

    def __init__(self, texts: Sequence[str], word_order: int = BLEU_ORDER):
        self.texts = list(texts)
        self.n = len(self.texts)
        self._word_order = max(word_order, BLEU_ORDER)

    @cached_property
    def words(self) -> _Ngrams:
        vocab: dict[str, int] = {}
        seqs = [np.array([vocab.setdefault(w, len(vocab)) for w in tokens(t)], dtype=np.int64) for t in self.texts]
        return _ngrams(seqs, self._word_order)

    @cached_property
    def chars(self) -> _Ngrams:
        seqs = [np.frombuffer("".join(t.split()).encode("utf-32-le", "surrogatepass"), dtype="<u4") for t in self.texts]
        return _ngrams(seqs, CHRF_CHAR_ORDER)

    @cached_property
    def chrf(self) -> np.ndarray:
        """(N, N) directed sentence chrF, [i, j] with i the hypothesis and j the reference."""
        grams = self.chars
        totals = grams.totals().astype(np.float64)  # (N, 6)
        matches = np.zeros((self.n, self.n, CHRF_CHAR_ORDER))
        matches[np.arange(self.n), np.arange(self.n)] = totals
        first, second = np.triu_indices(self.n, 1)
        step = max(1, _PAIR_BLOCK // max(1, grams.counts.shape[1]))  # pairs a block, to bound memory
        for b in range(0, len(first), step):
            i, j = first[b : b + step], second[b : b + step]
            m = grams.per_order(np.minimum(grams.counts[i], grams.counts[j]))  # clipped matches, symmetric
            matches[i, j] = m
            matches[j, i] = m
        hyp, ref = totals[:, None, :], totals[None, :, :]
        effective = (hyp > 0) & (ref > 0)
        precision = np.where(effective, matches / np.maximum(hyp, 1), 0.0).sum(-1)
        recall = np.where(effective, matches / np.maximum(ref, 1), 0.0).sum(-1)
        orders = np.maximum(effective.sum(-1), 1)
        precision, recall = precision / orders, recall / orders
        factor = CHRF_BETA**2
        denominator = factor * precision + recall
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(denominator > 0, (1 + factor) * precision * recall / denominator, 0.0)
        return f

    @cached_property
    def chrf_similarity(self) -> np.ndarray:
        sim = (self.chrf + self.chrf.T) / 2
        blank = self.chars.lengths == 0
        sim[np.ix_(blank, blank)] = 1.0
        np.fill_diagonal(sim, 1.0)
        return sim

    def ngram_counts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distinct, all) n-grams of each order 1..max over the samples idx, two int arrays."""
        counts = self.words.counts[idx]
        return self.words.per_order(counts.any(axis=0)), self.words.per_order(counts.sum(axis=0))

    @staticmethod
    def distinct(stats: tuple[np.ndarray, np.ndarray], n: int) -> float | None:
        distinct, total = int(stats[0][n - 1]), int(stats[1][n - 1])
        return distinct / total if total else None

    @staticmethod
    def ead(stats: tuple[np.ndarray, np.ndarray], n: int, vocab_size: float) -> float | None:
        distinct, total = int(stats[0][n - 1]), int(stats[1][n - 1])
        if not total:
            return None
        # V·(1 − ((V−1)/V)^C), as V·(−expm1(C·log1p(−1/V))) to keep precision for large V
        expected = vocab_size * -math.expm1(total * math.log1p(-1 / vocab_size)) if vocab_size > 1 else 1.0
        return distinct / expected

    def self_bleu(self, idx: np.ndarray) -> float | None:
        grams = self.words
        lengths = grams.lengths[idx]
        if len(idx) < 2 or not lengths.any():
            return None
        counts = grams.counts[idx, : grams.offsets[BLEU_ORDER]]
        top = np.sort(counts, axis=0)
        first, second = top[-1], top[-2]
        others_max = np.where(counts == first, second, first)  # max count of each n-gram in the others
        matches = grams.per_order(np.minimum(counts, others_max))[:, :BLEU_ORDER]
        totals = grams.totals()[idx, :BLEU_ORDER]
        scores = []
        all_lengths = lengths.tolist()
        for i, hyp_len in enumerate(all_lengths):
            refs = all_lengths[:i] + all_lengths[i + 1 :]
            ref_len = min(refs, key=lambda r: (abs(r - hyp_len), r))  # closest, the shorter on a tie
            scores.append(_sentence_bleu(matches[i], totals[i], hyp_len, ref_len))
        return float(np.mean(scores))

    def self_chrf(self, idx: np.ndarray) -> float | None:
        if len(idx) < 2:
            return None
        sim = self.chrf_similarity[np.ix_(idx, idx)]
        return float(sim[np.triu_indices(len(idx), 1)].mean())

    def trajectories(self, idx: np.ndarray, threshold: float) -> int:
        return _components(self.chrf_similarity[np.ix_(idx, idx)] >= threshold)


def _components(adjacent: np.ndarray) -> int:
    """Connected components of a symmetric boolean adjacency matrix."""
    n = adjacent.shape[0]
    seen = np.zeros(n, dtype=bool)
    count = 0
    for start in range(n):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            for j in np.flatnonzero(adjacent[stack.pop()] & ~seen).tolist():
                seen[j] = True
                stack.append(j)
    return count


def all_rows(n: int) -> np.ndarray:
    return np.arange(n)
