"""Group diversity measures: hand-computed values, the degenerate groups, the effective variants, and
agreement of the in-house BLEU and chrF with sacreBLEU's sentence scores."""

from __future__ import annotations

import itertools
import math
import random
import warnings

import numpy as np
import pytest
import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from counterpoint.rollout import ngrams
from counterpoint.rollout.diversity import (
    DIVERSITY_METRICS,
    EAD_VOCAB_SIZE,
    HIGHER_IS_MORE_DIVERSE,
    TRAJECTORY_THRESHOLD,
    ast_shape,
    chrf,
    distinct_ast_shapes,
    distinct_n,
    expectation_adjusted_distinct,
    functional_classes,
    group_diversity,
    mean_over_groups,
    pairwise_chrf,
    self_bleu,
    self_chrf,
    semantic_diversity,
    tokens,
    unique_trajectories,
    vendi_score,
)

E = np.eye(3)  # unit rows e1, e2, e3
LEXICAL = (
    *(f"distinct_{n}" for n in (1, 2, 3, 4)),
    *(f"ead_{n}" for n in (1, 2, 3, 4)),
    "self_bleu",
    "self_chrf",
    "unique_trajectories",
)

# Groups on which self-BLEU and chrF must equal sacreBLEU's: empty and blank strings, punctuation,
# numbers, 13a's entity and "-\n" handling, repeats (clipping over several references), a tie of
# reference lengths (3 between 2 and 4: the shorter is chosen), non-ASCII and emoji.
SACREBLEU_GROUPS = [
    ["the cat sat on the mat.", "the cat sat on a mat!", "a dog (barked) at 3.5 cats, 1,000 times?"],
    ["", "a b c", "a b c d", ""],
    ["a b c", "a b", "a b c d"],
    ["the the the the", "the cat", "the the cat cat the"],
    ["x &amp; y &quot;z&quot;", 'x & y "z"', "re-\nsult", "re- sult  \n"],
    ["Ünïcödé café — naïve 😀", "unicode cafe - naive", "café café 😀😀"],
    ["Hello, world! How are you?", "hello world how are you", "Hello world. How are you!!", "   "],
    ["def f(x):\n    return x + 1", "def g(y):\n    return y * 2", "print(f(3))"],
]


# --- tokens ---------------------------------------------------------------------------------------


def test_tokens_are_13a_words_and_punctuation():
    assert tokens("Hello, world!") == ["Hello", ",", "world", "!"]
    assert tokens("3.5 apples, 1,000 pears.") == ["3.5", "apples", ",", "1,000", "pears", "."]
    assert tokens("don't stop (now)") == ["don't", "stop", "(", "now", ")"]  # 13a leaves the apostrophe
    assert tokens("") == [] and tokens("  \n ") == []


def test_tokens_match_sacrebleu_13a():
    # the port against sacreBLEU's tokenizer, as sentence_bleu calls it, on a seeded character soup
    pieces = [*"abc XYZ 0189 .,-\n\t'\"&;<>()[]{}|~^_`!#$%*+:=?@/\\é中😀\u00a0"]
    pieces += ["&quot;", "&amp;", "&lt;", "&gt;", "<skipped>", "-\n", "3.5", "1,000", "9-", "..", ",,"]
    rng = random.Random(13)
    sacre = Tokenizer13a()
    for _ in range(2000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert tokens(line) == sacre(line.rstrip()).split(), repr(line)


# --- distinct-n and EAD ---------------------------------------------------------------------------


def test_distinct_n_hand_computed():
    texts = ["a b c", "a b d"]
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)  # a b c a b d: {a, b, c, d}
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)  # ab bc ab bd: {ab, bc, bd}
    assert distinct_n(texts, 3) == pytest.approx(2 / 2)  # abc abd
    assert distinct_n(texts, 4) is None  # no sample has 4 tokens
    # (n-grams never span two samples: "c a" is no bigram of the group, hence 4 bigrams and not 5)
    assert distinct_n(["a b c d e"], 5) == 1.0  # any order works: 1 distinct / 1
    # punctuation is a token: "hi , hi ." → {hi, ",", "."} of 4
    assert distinct_n(["hi, hi."], 1) == pytest.approx(3 / 4)


def test_ead_hand_computed():
    texts = ["a b c", "a b d"]
    # V = 10, C = 6 unigrams, 4 distinct: 4 / (10·(1 − 0.9^6)) = 4 / 4.68559 = 0.853681
    assert expectation_adjusted_distinct(texts, 1, vocab_size=10) == pytest.approx(0.853681, abs=1e-6)
    # V = 1: the expectation is 1·(1 − 0^C) = 1, so EAD is the distinct count: 3 bigrams
    assert expectation_adjusted_distinct(texts, 2, vocab_size=1) == pytest.approx(3.0)
    # the default V = 50,000 and C = 4 bigrams: 3 / (50000·(1 − (49999/50000)^4)) = 3 / 3.99988 = 0.750022
    assert EAD_VOCAB_SIZE == 50_000
    assert expectation_adjusted_distinct(texts, 2) == pytest.approx(0.7500225, abs=1e-7)
    assert expectation_adjusted_distinct(["", " "], 1) is None
    with pytest.raises(ValueError):
        expectation_adjusted_distinct(texts, 1, vocab_size=0)


# --- self-BLEU ------------------------------------------------------------------------------------


def test_self_bleu_hand_computed():
    # "a b c d" against "a b c e" (and back, the same): precisions 3/4, 2/3, 1/2 and 0/1, the zero
    # smoothed ("exp") to 1/(2·1); equal lengths, no brevity penalty: (3/4·2/3·1/2·1/2)^(1/4) = 2^(−3/4)
    assert self_bleu(["a b c d", "a b c e"]) == pytest.approx(2**-0.75)  # 0.594604
    # "a b c" against "a b c d": 3/3, 2/2, 1/1 and no 4-gram (effective order 3), brevity exp(1 − 4/3);
    # "a b c d" against "a b c": 3/4, 2/3, 1/2, 0/1 → 1/2 smoothed, longer so no penalty: 2^(−3/4)
    assert self_bleu(["a b c", "a b c d"]) == pytest.approx((math.exp(-1 / 3) + 2**-0.75) / 2)  # 0.655567
    # Clipping to the largest count in any one reference: "a a" vs {"a b", "b b"}: a clipped to 1 → 1/2,
    # "a a" unmatched → 1/(2·1): (1/2·1/2)^(1/2) = 1/2; "a b": 2/2 and 1/2 smoothed → 2^(−1/2);
    # "b b": 1/2 as "a a"; mean (1/2 + 2^(−1/2) + 1/2)/3 = 0.569036
    assert self_bleu(["a a", "a b", "b b"]) == pytest.approx((1 + 2**-0.5) / 3)
    # no shared token: 0
    assert self_bleu(["a b", "c d"]) == 0.0


@pytest.mark.parametrize("texts", SACREBLEU_GROUPS)
def test_self_bleu_equals_sacrebleu(texts):
    expected = np.mean(
        [sacrebleu.sentence_bleu(texts[i], texts[:i] + texts[i + 1 :]).score / 100 for i in range(len(texts))]
    )
    assert self_bleu(texts) == pytest.approx(expected, abs=1e-6)


# --- chrF -----------------------------------------------------------------------------------------


def test_chrf_hand_computed():
    assert chrf("ab", "ab") == pytest.approx(1.0)
    # "ab" vs "ac": order 1 P = R = 1/2 (a), order 2 P = R = 0, orders 3..6 absent; mean P = R = 1/4,
    # F2 = 5·PR/(4P + R) = (5/16)/(5/4) = 1/4
    assert chrf("ab", "ac") == pytest.approx(0.25)
    # "a" vs "ab": order 1 only (the hypothesis has no bigram): P = 1, R = 1/2: 2.5/4.5 = 5/9
    assert chrf("a", "ab") == pytest.approx(5 / 9)
    # "ab" vs "a": order 1 only (the reference has no bigram): P = 1/2, R = 1: 2.5/3 = 5/6
    assert chrf("ab", "a") == pytest.approx(5 / 6)
    assert chrf("a b", "ab") == pytest.approx(1.0)  # whitespace removed
    assert chrf("", "") == 0.0 and chrf("", "a") == 0.0  # as sacreBLEU


def test_pairwise_chrf_is_symmetric_mean_of_both_directions():
    sim = pairwise_chrf(["a", "ab", "", " \n"])
    # (5/9 + 5/6)/2 = 25/36; blank vs blank 1 (sacreBLEU says 0); blank vs text 0; diagonal 1
    expected = np.array(
        [
            [1, 25 / 36, 0, 0],
            [25 / 36, 1, 0, 0],
            [0, 0, 1, 1],
            [0, 0, 1, 1],
        ]
    )
    np.testing.assert_allclose(sim, expected, atol=1e-12)
    assert pairwise_chrf([]).shape == (0, 0)


def test_self_chrf_hand_computed():
    # pairs (a, ab), (a, ab), (ab, ab): (25/36 + 25/36 + 1)/3 = 0.796296
    assert self_chrf(["a", "ab", "ab"]) == pytest.approx((25 / 36 + 25 / 36 + 1) / 3)
    assert self_chrf(["only one"]) is None and self_chrf([]) is None


@pytest.mark.parametrize("texts", SACREBLEU_GROUPS)
def test_chrf_equals_sacrebleu(texts):
    for hyp, ref in itertools.product(texts, repeat=2):
        assert chrf(hyp, ref) == pytest.approx(sacrebleu.sentence_chrf(hyp, [ref]).score / 100, abs=1e-6)
    sim = pairwise_chrf(texts)
    for i, j in itertools.combinations(range(len(texts)), 2):
        if texts[i].strip() or texts[j].strip():
            both = (
                sacrebleu.sentence_chrf(texts[i], [texts[j]]).score
                + sacrebleu.sentence_chrf(texts[j], [texts[i]]).score
            )
            assert sim[i, j] == pytest.approx(both / 200, abs=1e-6)


def test_chrf_with_a_large_alphabet_uses_the_exact_fallback():
    # 1,500 distinct characters: 1501^6 overflows int64, so the n-grams are counted in dicts
    alphabet = [chr(0x4E00 + k) for k in range(1500)]
    a = "".join(alphabet)
    b = "".join(alphabet[::2] + alphabet[:40])
    assert chrf(a, b) == pytest.approx(sacrebleu.sentence_chrf(a, [b]).score / 100, abs=1e-6)
    assert chrf(b, a) == pytest.approx(sacrebleu.sentence_chrf(b, [a]).score / 100, abs=1e-6)


def test_fast_and_fallback_ngram_counts_agree():
    seqs = [np.array(s, dtype=np.int64) for s in ([0, 1, 2, 1, 2], [2, 2], [], [1, 0, 1, 0, 1, 0])]
    fast, slow = ngrams._ngrams(seqs, 4), ngrams._ngrams(seqs, 4, fast=False)
    np.testing.assert_array_equal(fast.offsets, slow.offsets)
    for n in range(1, 5):  # the same columns, perhaps in another order
        assert sorted(map(tuple, fast.order(n).T.tolist())) == sorted(map(tuple, slow.order(n).T.tolist()))


# --- unique trajectories --------------------------------------------------------------------------


def test_unique_trajectories_connected_components():
    assert TRAJECTORY_THRESHOLD == 0.7
    # sim(a, ab) = 25/36 = 0.694; "xyz" shares no character with either
    assert unique_trajectories(["a", "ab", "xyz"], threshold=0.5) == 2
    assert unique_trajectories(["a", "ab", "xyz"], threshold=0.7) == 3
    # "ab" vs "abc": one way 7/11, the other 7/8, similarity 133/176 = 0.756 (so "bc" vs "abc");
    # "ab" vs "bc" only 1/4, but single linkage chains them through "abc": one trajectory, whatever the order
    for order in itertools.permutations(["ab", "bc", "abc"]):
        assert unique_trajectories(list(order), threshold=0.7) == 1
    assert unique_trajectories(["ab", "bc", "abc"], threshold=0.76) == 3
    assert unique_trajectories([]) == 0
    assert unique_trajectories(["one"]) == 1
    assert unique_trajectories(["", " "]) == 1  # blank samples are one trajectory


# --- semantic -------------------------------------------------------------------------------------


def test_semantic_diversity_hand_computed():
    assert semantic_diversity(E[:2]) == pytest.approx(1.0)  # e1·e2 = 0
    assert semantic_diversity(np.stack([E[0], E[0]])) == pytest.approx(0.0)
    assert semantic_diversity(np.stack([E[0], -E[0]])) == pytest.approx(2.0)
    u = (E[0] + E[1]) / math.sqrt(2)
    # pairs: e1·e2 = 0 → 1; e1·u = e2·u = 1/√2 → 1 − 0.707107 each; mean (1 + 2·0.292893)/3 = 0.528595
    assert semantic_diversity(np.stack([E[0], E[1], u])) == pytest.approx((1 + 2 * (1 - 1 / math.sqrt(2))) / 3)
    assert semantic_diversity(E[:1]) is None and semantic_diversity(np.zeros((0, 3))) is None


def test_vendi_score_hand_computed():
    assert vendi_score(np.stack([E[0]] * 3)) == pytest.approx(1.0)  # K/3 = all 1/3: eigenvalues 1, 0, 0
    assert vendi_score(E) == pytest.approx(3.0)  # K/3 = I/3: exp(3 · −(1/3)·log(1/3)) = 3
    # cos 0.5: eigenvalues of K/2 are (1 ± 0.5)/2 = 0.75, 0.25; exp(−0.75 ln 0.75 − 0.25 ln 0.25) = 1.754765
    pair = np.array([[1.0, 0.0], [0.5, math.sqrt(0.75)]])
    assert vendi_score(pair) == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    assert vendi_score(E[:1]) == pytest.approx(1.0)
    assert vendi_score(np.zeros((0, 3))) is None


# --- code -----------------------------------------------------------------------------------------

ADD_ONE = "def f(x):\n    return x + 1\n"
ADD_TWO_RENAMED = 'def grow(value):\n    """Add two."""\n    # a comment\n    return value + 2\n'
TIMES_ONE = "def f(x):\n    return x * 1\n"


def test_ast_shape_ignores_names_literals_docstrings_and_comments():
    assert ast_shape(ADD_ONE) == ast_shape(ADD_TWO_RENAMED)
    assert ast_shape(ADD_ONE) != ast_shape(TIMES_ONE)  # Add vs Mult
    assert ast_shape(ADD_ONE) != ast_shape("def f(x):\n    return x\n")
    assert ast_shape("import os\nos.path.join('a', 1)") == ast_shape("import sys\nsys.argv.append(None, 2.5)")
    assert ast_shape("class A:\n    'doc'\n    x = 1\n") == ast_shape("class B:\n    y = 'not a docstring'\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the invalid escape's warning does not escape
        assert ast_shape("s = '\\d'") == ast_shape("s = 1")
    assert ast_shape("def f(:\n") is None
    assert ast_shape("x = 1\0") is None


def test_distinct_ast_shapes_leaves_unparsable_out():
    # ADD_ONE and ADD_TWO_RENAMED share a shape; TIMES_ONE another; "def (" and None have none
    assert distinct_ast_shapes([ADD_ONE, ADD_TWO_RENAMED, TIMES_ONE, "def (", None]) == 2
    assert distinct_ast_shapes([ADD_ONE] * 4) == 1
    assert distinct_ast_shapes(["def (", None]) == 0 and distinct_ast_shapes([]) == 0


def test_functional_classes():
    sigs = [("pass", "pass"), ("pass", "pass"), ("pass", "wrong_answer: returned 3"), None]
    assert functional_classes(sigs) == 2
    assert functional_classes([["pass", "timeout"], ("pass", "timeout")]) == 1  # lists and tuples alike
    assert functional_classes([]) == 0


# --- group_diversity ------------------------------------------------------------------------------


def test_metric_tables():
    assert len(set(DIVERSITY_METRICS)) == len(DIVERSITY_METRICS) == 30
    assert set(HIGHER_IS_MORE_DIVERSE) == set(DIVERSITY_METRICS)
    similar = {k for k, v in HIGHER_IS_MORE_DIVERSE.items() if not v}
    assert similar == {"self_bleu", "self_chrf", "effective_self_bleu", "effective_self_chrf"}


def test_group_diversity_keys():
    texts = ["a b", "c d"]
    assert tuple(group_diversity(texts)) == LEXICAL
    full = group_diversity(
        texts, passing=[True, False], vectors=E[:2], programs=[ADD_ONE, None], signatures=[("pass",), None]
    )
    assert tuple(full) == DIVERSITY_METRICS


def test_group_diversity_hand_computed():
    texts = ["a b c", "a b d", "x y z"]
    out = group_diversity(texts, passing=[True, True, False], vectors=E, vocab_size=10)
    assert out["distinct_1"] == pytest.approx(7 / 9)  # {a, b, c, d, x, y, z} of 9
    assert out["distinct_2"] == pytest.approx(5 / 6)  # ab bc ab bd xy yz: 5 distinct
    assert out["distinct_3"] == pytest.approx(1.0) and out["distinct_4"] is None
    assert out["ead_1"] == pytest.approx(7 / (10 * (1 - 0.9**9)))  # 7 / 6.12579 = 1.142708
    assert out["semantic_diversity"] == pytest.approx(1.0) and out["vendi"] == pytest.approx(3.0)
    # the passing two, as test_distinct_n_hand_computed and test_ead_hand_computed
    assert out["effective_distinct_2"] == pytest.approx(3 / 4)
    assert out["effective_ead_1"] == pytest.approx(0.853681, abs=1e-6)
    assert out["effective_vendi"] == pytest.approx(2.0)  # e1, e2: K/2 = I/2


def test_group_diversity_effective_equals_the_passing_subgroup():
    texts = ["the cat sat on the mat", "a dog sat on the mat", "", "the cat sat on a hat", "birds fly"]
    passing = [True, False, True, True, False]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    programs = [ADD_ONE, TIMES_ONE, None, ADD_TWO_RENAMED, "def ("]
    signatures = [("pass",), ("fail",), None, ("pass",), ("fail",)]
    out = group_diversity(texts, passing=passing, vectors=vectors, programs=programs, signatures=signatures)
    keep = [i for i, p in enumerate(passing) if p]
    sub = group_diversity(
        [texts[i] for i in keep],
        vectors=vectors[keep],
        programs=[programs[i] for i in keep],
        signatures=[signatures[i] for i in keep],
    )
    for key, value in sub.items():
        assert out[f"effective_{key}"] == pytest.approx(value), key
    assert out["ast_shapes"] == 2 and out["effective_ast_shapes"] == 1
    assert out["functional_classes"] == 2 and out["effective_functional_classes"] == 1


def test_group_diversity_standalone_functions_agree():
    texts = SACREBLEU_GROUPS[0] + SACREBLEU_GROUPS[3]
    out = group_diversity(texts)
    for n in (1, 2, 3, 4):
        assert out[f"distinct_{n}"] == pytest.approx(distinct_n(texts, n))
        assert out[f"ead_{n}"] == pytest.approx(expectation_adjusted_distinct(texts, n))
    assert out["self_bleu"] == pytest.approx(self_bleu(texts))
    assert out["self_chrf"] == pytest.approx(self_chrf(texts))
    assert out["unique_trajectories"] == unique_trajectories(texts)


def test_degenerate_empty_group():
    out = group_diversity([], passing=[], vectors=np.zeros((0, 3)), programs=[], signatures=[])
    assert all(out[k] is None for k in LEXICAL if k != "unique_trajectories")
    assert out["unique_trajectories"] == 0
    assert out["semantic_diversity"] is None and out["vendi"] is None
    assert out["ast_shapes"] == 0 and out["functional_classes"] == 0
    assert all(out[f"effective_{k}"] is None for k in LEXICAL)


def test_degenerate_one_sample():
    out = group_diversity(["a b c"], vectors=E[:1], programs=[ADD_ONE], signatures=[("pass",)])
    # distinct still defined: 3/3, 2/2, 1/1, no 4-gram
    assert (out["distinct_1"], out["distinct_2"], out["distinct_3"], out["distinct_4"]) == (1.0, 1.0, 1.0, None)
    assert out["self_bleu"] is None and out["self_chrf"] is None and out["semantic_diversity"] is None
    assert out["unique_trajectories"] == 1 and out["vendi"] == pytest.approx(1.0)
    assert out["ast_shapes"] == 1 and out["functional_classes"] == 1


def test_degenerate_empty_strings():
    out = group_diversity(["", " ", "\n"])
    assert all(out[k] is None for k in LEXICAL[:9])  # no n-grams: distinct, EAD and self-BLEU undefined
    assert out["self_chrf"] == 1.0 and out["unique_trajectories"] == 1  # blank samples are alike


def test_degenerate_identical_samples():
    texts = ["the cat sat"] * 4
    out = group_diversity(texts, vectors=np.stack([E[0]] * 4), programs=[ADD_ONE] * 4, signatures=[("pass",)] * 4)
    assert out["distinct_1"] == pytest.approx(3 / 12)  # the cat sat ×4: 3 of 12
    assert out["distinct_2"] == pytest.approx(2 / 8)
    assert out["distinct_3"] == pytest.approx(1 / 4)
    assert out["self_bleu"] == pytest.approx(1.0)  # 3/3, 2/2, 1/1, no 4-gram: effective order 3
    assert out["self_chrf"] == pytest.approx(1.0) and out["unique_trajectories"] == 1
    assert out["semantic_diversity"] == pytest.approx(0.0, abs=1e-12) and out["vendi"] == pytest.approx(1.0)
    assert out["ast_shapes"] == 1 and out["functional_classes"] == 1


def test_no_passing_sample_makes_effective_none():
    out = group_diversity(
        ["a b", "c d"], passing=[False, False], vectors=E[:2], programs=[ADD_ONE, TIMES_ONE], signatures=[("a",), None]
    )
    effective = [k for k in out if k.startswith("effective_")]
    assert len(effective) == 15 and all(out[k] is None for k in effective)
    assert out["distinct_1"] == 1.0


def test_group_diversity_checks_lengths():
    with pytest.raises(ValueError, match="passing"):
        group_diversity(["a", "b"], passing=[True])
    with pytest.raises(ValueError, match="vectors"):
        group_diversity(["a", "b"], vectors=E)


# --- mean_over_groups -----------------------------------------------------------------------------


def test_mean_over_groups_skips_none():
    groups = [
        {"distinct_1": 0.5, "self_bleu": None, "vendi": None, "custom": 1},
        {"distinct_1": 1.0, "self_bleu": 0.2, "vendi": None},
        {"distinct_1": None, "self_bleu": None, "vendi": None, "custom": 3},
    ]
    out = mean_over_groups(groups)
    # distinct_1 (0.5 + 1.0)/2; self_bleu only the second; vendi never; keys in DIVERSITY_METRICS order
    assert out == {"distinct_1": 0.75, "self_bleu": 0.2, "vendi": None, "custom": 2.0}
    assert list(out) == ["distinct_1", "self_bleu", "vendi", "custom"]
    assert mean_over_groups([]) == {}
