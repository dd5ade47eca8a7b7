"""Output diversity of a group of responses sampled for one prompt: lexical, semantic and code measures,
their "effective" variants over the quality-passing samples only, and a count of unique trajectories.

Lexical (over `tokens`, the words and punctuation marks of sacreBLEU's 13a tokenisation, case kept):
- distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation
  Models"): distinct n-grams of the group / all n-grams of the group (n-grams never span two
  samples), n = 1..4. In (0, 1]; None when the group has no n-gram of that order.
- EAD, expectation-adjusted distinct (Liu et al. 2022, "Rethinking and Refining the Distinct
  Metric"): the distinct count divided by its expectation V·(1 − ((V−1)/V)^C) for C n-grams drawn
  uniformly from a vocabulary of V (`vocab_size`, default `EAD_VOCAB_SIZE` = 50,000, a word
  vocabulary; the same V for every n). It corrects distinct-n's fall with length;
  for C ≪ V it is distinct-n times about 1 + C/(2V), so it can exceed 1 slightly. None as distinct-n.
- self-BLEU (Zhu et al. 2018, "Texygen"): each sample's sentence BLEU against all the others as
  references, averaged; the settings of `sacrebleu.sentence_bleu` (13a, case kept, n ≤ 4, "exp"
  smoothing, effective order), scaled to [0, 1]. A similarity: 1 for identical samples. None for
  fewer than two samples, or when no sample has a token.
- chrF (Popović 2015): sacreBLEU's sentence chrF (character n-grams 1..6, whitespace removed,
  β = 2, no word n-grams, effective-order averaging), in [0, 1]. chrF is asymmetric (β weighs
  recall), so the similarity of two samples is the mean of both directions; two samples with no
  characters besides whitespace have similarity 1 (sacreBLEU gives 0). `self_chrf` is the mean
  similarity over the pairs of the group, in [0, 1], larger = less diverse; None below two samples.
- unique trajectories (arXiv 2509.21128): the samples as nodes, an edge where the chrF similarity
  is at least `threshold` (default `TRAJECTORY_THRESHOLD`); the count of connected components
  (single linkage: deterministic and independent of the samples' order). In 1..N; 0 for no samples.

Semantic (over unit sentence-embedding rows (N, D) the caller computes, all-MiniLM-L6-v2):
- semantic diversity: mean pairwise cosine distance 1 − u·v over the pairs, in [0, 2] (about
  [0, 1] in practice); None below two samples.
- Vendi score (Friedman & Dieng 2023, "The Vendi Score"): exp of the Shannon entropy (natural log)
  of the eigenvalues of K/N, K the cosine-similarity matrix: the effective number of distinct
  samples, in [1, N]: 1 for identical samples, N for orthogonal ones; None for no samples.

Code (over Python sources; None where a sample has no program):
- AST shapes: distinct `ast_shape`s, a canonical dump of a program's syntax tree (node types and
  fields in `ast.dump`'s order) with every identifier (names, arguments, functions, classes,
  attributes, keywords, imports) written "_", every constant a bare "Constant" and docstrings dropped
  (comments are not in the tree), so programs that differ only in names and literals share a shape.
  In 0..N. Unparsable programs have no shape and are left out of the count (not counted as a shape).
- functional classes: distinct behaviour signatures (a program's per-test outcome strings, passed
  by the caller), in 0..N; None signatures are left out.

Effective variants (arXiv 2504.12522): each measure over the samples the caller marks as passing its
quality check, keys prefixed "effective_"; all None when none passes.

Cost: no per-pair calls into sacreBLEU (about 0.25 ms each). Each text is tokenised once (13a, ported
here, so sacreBLEU is not imported at run time; the tests check the port and both scores against
sacreBLEU), and its word n-grams (1..4) and character n-grams (1..6) are counted once, by numpy, into
a group-wide count matrix (n-grams coded as integers, one `np.unique`); BLEU's clipped matches
against the other samples come from each n-gram's two largest counts, chrF's from one elementwise
minimum per pair of rows, and the effective variants reuse all of it. On 8 responses of about 15
words `group_diversity` takes about 1.5 ms (2 ms with vectors and `passing`), on 8 of 400 words
about 12 ms; programs add their parse, about 0.3-0.5 ms for a distinct 25-line one. Memory is
O(N × the group's distinct n-grams).
"""

from __future__ import annotations

import ast
import threading
import warnings
from collections.abc import Sequence

import numpy as np

from counterpoint.rollout.ngrams import (  # noqa: F401 - the settings and `tokens` are part of this API
    BLEU_ORDER,
    CHRF_BETA,
    CHRF_CHAR_ORDER,
    DISTINCT_ORDERS,
    EAD_VOCAB_SIZE,
    TRAJECTORY_THRESHOLD,
    Group,
    all_rows,
    tokens,
)

_BASE_METRICS = (
    *(f"distinct_{n}" for n in DISTINCT_ORDERS),
    *(f"ead_{n}" for n in DISTINCT_ORDERS),
    "self_bleu",
    "self_chrf",
    "unique_trajectories",
    "semantic_diversity",
    "vendi",
    "ast_shapes",
    "functional_classes",
)
# Every key `group_diversity` can return, in the order it returns them.
DIVERSITY_METRICS: tuple[str, ...] = (*_BASE_METRICS, *(f"effective_{k}" for k in _BASE_METRICS))
# Whether a larger value means a more diverse group: all but the two similarities.
HIGHER_IS_MORE_DIVERSE: dict[str, bool] = {
    k: k.removeprefix("effective_") not in ("self_bleu", "self_chrf") for k in DIVERSITY_METRICS
}


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct n-grams / all n-grams over the group's `tokens`; None when it has no n-gram."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    group = Group(texts, word_order=n)
    return group.distinct(group.ngram_counts(all_rows(len(texts))), n)


def expectation_adjusted_distinct(texts: Sequence[str], n: int, vocab_size: float = EAD_VOCAB_SIZE) -> float | None:
    """Distinct n-grams / V·(1 − ((V−1)/V)^C), C the group's n-grams, V `vocab_size`; None without n-grams."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
    group = Group(texts, word_order=n)
    return group.ead(group.ngram_counts(all_rows(len(texts))), n, vocab_size)


def self_bleu(texts: Sequence[str]) -> float | None:
    """Mean over i of sentence BLEU (sacreBLEU defaults) of texts[i] against the others, in [0, 1]."""
    return Group(texts).self_bleu(all_rows(len(texts)))


def chrf(hypothesis: str, reference: str) -> float:
    """sacreBLEU's `sentence_chrf(hypothesis, [reference]).score / 100` (directed; 0 when either is blank)."""
    return float(Group([hypothesis, reference]).chrf[0, 1])


def pairwise_chrf(texts: Sequence[str]) -> np.ndarray:
    """(N, N) symmetric chrF similarity in [0, 1]: the mean of both directions, 1 on the diagonal and
    between two blank texts."""
    return Group(texts).chrf_similarity.copy()


def self_chrf(texts: Sequence[str]) -> float | None:
    """Mean symmetric chrF similarity over the pairs of the group; None below two texts."""
    return Group(texts).self_chrf(all_rows(len(texts)))


def unique_trajectories(texts: Sequence[str], threshold: float = TRAJECTORY_THRESHOLD) -> int:
    """Connected components of the graph joining samples whose symmetric chrF similarity is ≥ threshold."""
    return Group(texts).trajectories(all_rows(len(texts)), threshold)


def _rows(vectors: np.ndarray) -> np.ndarray:
    """(N, D) float64; the rows are taken to be unit vectors as given (not renormalised)."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"vectors must be (N, D), got shape {v.shape}")
    return v


def semantic_diversity(vectors: np.ndarray) -> float | None:
    """Mean 1 − cos over the pairs of unit rows (N, D), in [0, 2]; None below two rows."""
    v = _rows(vectors)
    n = v.shape[0]
    if n < 2:
        return None
    distances = 1.0 - (v @ v.T)[np.triu_indices(n, 1)]
    return float(np.clip(distances, 0.0, 2.0).mean())


def vendi_score(vectors: np.ndarray) -> float | None:
    """exp(−Σ λ log λ) over the eigenvalues λ of K/N, K = V Vᵀ of unit rows (N, D); in [1, N], None for N = 0."""
    v = _rows(vectors)
    n = v.shape[0]
    if n == 0:
        return None
    v = v.astype(np.float64)
    eigenvalues = np.linalg.eigvalsh(v @ v.T / n)
    p = eigenvalues[eigenvalues > 1e-12]
    p = p / p.sum()  # the trace is 1 for unit rows; float32 rows miss it by ~1e-7, which would leave the range
    return float(min(max(np.exp(-(p * np.log(p)).sum()), 1.0), n))


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


_DOCSTRING_OWNERS = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_PARSE_LOCK = threading.Lock()


def ast_shape(source: str) -> str | None:
    """A canonical dump of a Python program's syntax tree, `ast.dump`'s node types and fields in its
    order, with every identifier written "_", constants as a bare "Constant" and docstrings dropped
    (comments are not in the tree), so programs that differ only in names and literals share a shape.
    None when it does not parse."""
    try:
        # Silence the parser's SyntaxWarnings (an invalid escape such as "\d" in a string: noise on
        # stderr, or a SyntaxError under -W error). catch_warnings swaps the process's filters, so the
        # lock keeps two threads of ours from restoring each other's; parsing holds the GIL anyway.
        with _PARSE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
        out: list[str] = []
        _dump_shape(tree, out)
        return "".join(out)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _dump_shape(node: ast.AST, out: list[str]) -> None:
    out.append(type(node).__name__)
    if isinstance(node, ast.Constant):
        return
    out.append("(")
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            _dump_shape(value, out)
        elif isinstance(value, list):
            if name == "body" and isinstance(node, _DOCSTRING_OWNERS) and value and _is_docstring(value[0]):
                value = value[1:]
            out.append("[")
            for item in value:
                if isinstance(item, ast.AST):
                    _dump_shape(item, out)
                else:
                    out.append("_")  # the identifiers of Global, Nonlocal, MatchClass.kwd_attrs
                out.append(",")
            out.append("]")
        elif isinstance(value, str):
            out.append("_")  # an identifier (or a type comment)
        else:
            out.append(repr(value))  # None, ImportFrom.level, FormattedValue.conversion, is_async
        out.append(",")
    out.append(")")


def distinct_ast_shapes(sources: Sequence[str | None]) -> int:
    """Distinct shapes among the parsable programs (unparsable ones and None are left out)."""
    return len({s for s in map(_shape_or_none, sources) if s is not None})


def _shape_or_none(source: str | None) -> str | None:
    return None if source is None else ast_shape(source)


def functional_classes(signatures: Sequence[Sequence[str] | None]) -> int:
    """Distinct behaviour signatures (tuples of per-test outcomes); None entries are left out."""
    return len({tuple(s) for s in signatures if s is not None})


def group_diversity(
    texts: Sequence[str],
    *,
    passing: Sequence[bool] | None = None,
    vectors: np.ndarray | None = None,
    programs: Sequence[str | None] | None = None,
    signatures: Sequence[Sequence[str] | None] | None = None,
    vocab_size: float = EAD_VOCAB_SIZE,
    threshold: float = TRAJECTORY_THRESHOLD,
) -> dict[str, float | int | None]:
    """Every measure for one group, keyed as `DIVERSITY_METRICS`: the lexical ones always,
    `semantic_diversity` and `vendi` with `vectors` (N, D unit rows), `ast_shapes` with `programs`
    (None for a sample without one), `functional_classes` with `signatures`, and with `passing`
    (one bool a sample) the same keys prefixed "effective_" over the passing samples (all None when
    none passes). Each text's n-grams, the chrF matrix and each program's shape are computed once."""
    n = len(texts)
    for name, given in (("passing", passing), ("vectors", vectors), ("programs", programs), ("signatures", signatures)):
        if given is not None and len(given) != n:
            raise ValueError(f"{name} has {len(given)} entries for {n} texts")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
    group = Group(texts)
    unit = _rows(vectors) if vectors is not None else None
    if programs is not None:
        parsed = {p: _shape_or_none(p) for p in set(programs)}  # identical programs parsed once
        shapes = [parsed[p] for p in programs]
    else:
        shapes = None
    keyed = [tuple(s) if s is not None else None for s in signatures] if signatures is not None else None

    def measures(idx: np.ndarray) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {}
        stats = group.ngram_counts(idx)
        for k in DISTINCT_ORDERS:
            out[f"distinct_{k}"] = group.distinct(stats, k)
        for k in DISTINCT_ORDERS:
            out[f"ead_{k}"] = group.ead(stats, k, vocab_size)
        out["self_bleu"] = group.self_bleu(idx)
        out["self_chrf"] = group.self_chrf(idx)
        out["unique_trajectories"] = group.trajectories(idx, threshold)
        if unit is not None:
            out["semantic_diversity"] = semantic_diversity(unit[idx])
            out["vendi"] = vendi_score(unit[idx])
        if shapes is not None:
            out["ast_shapes"] = len({shapes[i] for i in idx.tolist()} - {None})
        if keyed is not None:
            out["functional_classes"] = len({keyed[i] for i in idx.tolist()} - {None})
        return out

    result = measures(all_rows(n))
    if passing is not None:
        chosen = np.flatnonzero(np.asarray(passing, dtype=bool))
        effective = measures(chosen) if len(chosen) else dict.fromkeys(result)
        result.update({f"effective_{key}": value for key, value in effective.items()})
    return result


def mean_over_groups(per_group: list[dict]) -> dict[str, float | None]:
    """Per key (in `DIVERSITY_METRICS` order, then any others as first seen), the mean over the groups
    whose value is not None; None where no group has one."""
    keys = [k for k in DIVERSITY_METRICS if any(k in g for g in per_group)]
    keys += list(dict.fromkeys(k for g in per_group for k in g if k not in HIGHER_IS_MORE_DIVERSE))
    out: dict[str, float | None] = {}
    for key in keys:
        values = [g[key] for g in per_group if g.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    return out
