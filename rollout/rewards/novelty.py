"""Novelty of each response against the other responses of its group and a rolling memory of the
run's recent outputs, lexical (character trigrams, no model) or semantic (sentence embeddings).

novelty_i = 1 - reduce({sim(i, j): j another response of the group} ∪ {sim(i, m): m in memory}),
with reduce = max (a response is as novel as its distance to its nearest neighbour) or mean, and
similarities clipped to [0, 1]. Pure functions over texts and arrays, plus a fixed-size ring
buffer for the memory; the encoder is passed in.

Lexical similarity is the Jaccard index of character-trigram sets. Within a group it is exact;
against the memory it is estimated from 128-value MinHash signatures (standard error about
0.04), so comparing with hundreds of remembered outputs costs one vectorised comparison.
"""

from __future__ import annotations

import zlib
from typing import Literal

import numpy as np

Reduce = Literal["max", "mean"]
MINHASH_SIZE = 128
# Multiply-shift hashing (odd multipliers, arithmetic mod 2^64): one hash function per column.
_rng = np.random.default_rng(20261126)
_MULTIPLIERS = _rng.integers(1, 2**63, MINHASH_SIZE, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_OFFSETS = _rng.integers(0, 2**63, MINHASH_SIZE, dtype=np.uint64)


def trigrams(text: str) -> set[str]:
    t = " ".join(text.lower().split())
    return {t[i : i + 3] for i in range(max(1, len(t) - 2))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


def minhash(grams: set[str]) -> np.ndarray:
    """(128,) uint64 signature; the share of equal entries of two signatures estimates Jaccard."""
    h = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64, count=len(grams))
    if h.size == 0:
        h = np.zeros(1, dtype=np.uint64)
    return ((h[:, None] * _MULTIPLIERS + _OFFSETS) >> np.uint64(32)).min(axis=0)


class RollingMemory:
    """The last `capacity` rows added (a ring buffer); `rows()` returns them, oldest first."""

    def __init__(self, capacity: int, width: int, dtype):
        self.capacity = capacity
        self._data = np.zeros((capacity, width), dtype=dtype)
        self._count = 0  # rows ever added

    def add(self, rows: np.ndarray) -> None:
        for row in rows[-self.capacity :] if self.capacity else []:
            self._data[self._count % self.capacity] = row
            self._count += 1

    def rows(self) -> np.ndarray:
        if self._count <= self.capacity:
            return self._data[: self._count]
        start = self._count % self.capacity
        return np.concatenate([self._data[start:], self._data[:start]])

    def __len__(self) -> int:
        return min(self._count, self.capacity)

    def state_dict(self) -> dict:
        return {"rows": self.rows().copy()}

    def load_state_dict(self, state: dict) -> None:
        self._count = 0
        self.add(state["rows"])


def _reduce(group_sims: np.ndarray, memory_sims: np.ndarray, reduce: Reduce) -> list[float]:
    """group_sims (N, N) with the diagonal ignored, memory_sims (N, M) → N novelties."""
    n = group_sims.shape[0]
    off_diagonal = ~np.eye(n, dtype=bool)
    out = []
    for i in range(n):
        sims = np.concatenate([group_sims[i][off_diagonal[i]], memory_sims[i]]).clip(0.0, 1.0)
        if sims.size == 0:
            out.append(1.0)
        else:
            out.append(float(1.0 - (sims.max() if reduce == "max" else sims.mean())))
    return out


def lexical_novelty(texts: list[str], memory: RollingMemory | None, reduce: Reduce = "max") -> list[float]:
    """Trigram-Jaccard novelty; adds the texts' signatures to `memory` afterwards."""
    grams = [trigrams(t) for t in texts]
    group = np.array([[jaccard(a, b) for b in grams] for a in grams]).reshape(len(texts), len(texts))
    signatures = np.stack([minhash(g) for g in grams]) if texts else np.zeros((0, MINHASH_SIZE), np.uint64)
    if memory is not None and len(memory):
        remembered = memory.rows()
        against_memory = (signatures[:, None, :] == remembered[None, :, :]).mean(axis=-1)
    else:
        against_memory = np.zeros((len(texts), 0))
    out = _reduce(group, against_memory, reduce)
    if memory is not None:
        memory.add(signatures)
    return out


def embedding_novelty(vectors: np.ndarray, memory: RollingMemory | None, reduce: Reduce = "max") -> list[float]:
    """Cosine novelty of unit vectors (N, D); adds them to `memory` afterwards."""
    group = vectors @ vectors.T
    against_memory = vectors @ memory.rows().T if memory is not None and len(memory) else np.zeros((len(vectors), 0))
    out = _reduce(group, against_memory, reduce)
    if memory is not None:
        memory.add(vectors)
    return out
