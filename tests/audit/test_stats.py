"""WEAT statistics against hand computations; test definitions from TOML."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from assay.analyses.audit import parse_tests, select, stats, weat_tests
from assay.analyses.audit.stimuli import sentences
from assay.errors import UsageError


def test_effect_size_uses_the_sample_standard_deviation() -> None:
    sx, sy = np.array([0.3, 0.1]), np.array([-0.1, -0.3])
    # mean difference 0.4; values 0.3, 0.1, -0.1, -0.3: sample variance (0.09+0.01+0.01+0.09)/3
    assert stats.effect_size(sx, sy) == pytest.approx(0.4 / math.sqrt(0.2 / 3))
    assert math.isnan(stats.effect_size(np.zeros(2), np.zeros(2)))


def test_association_is_the_mean_cosine_difference() -> None:
    a = stats.unit(np.array([[1.0, 0.0], [1.0, 0.1]]))
    b = stats.unit(np.array([[0.0, 1.0], [0.1, 1.0]]))
    w = stats.unit(np.array([[1.0, 0.0]]))
    expect = np.mean([1.0, 1 / math.hypot(1, 0.1)]) - np.mean([0.0, 0.1 / math.hypot(0.1, 1)])
    assert stats.association(w, a, b)[0] == pytest.approx(expect)


def test_exact_p_value_by_hand() -> None:
    sx, sy = np.array([3.0, 2.0]), np.array([1.0, 0.0])
    s = [3.0, 2.0, 1.0, 0.0]
    observed = 5.0 - 1.0
    stat = [2 * sum(s[i] for i in c) - 6.0 for c in itertools.combinations(range(4), 2)]
    expect = sum(v > observed for v in stat) / 6          # no partition beats the observed one
    p = stats.permutation_p(sx, sy)
    assert (p.method, p.samples, p.value) == ("exact", 6, expect) and expect == 0.0
    p = stats.permutation_p(sy, sx)                          # the reverse is the extreme other way
    assert p.value == pytest.approx(5 / 6)


def test_monte_carlo_agrees_with_exact_and_is_seeded() -> None:
    rng = np.random.default_rng(7)
    sx, sy = rng.normal(0.1, 1, 9), rng.normal(0, 1, 9)
    exact = stats.permutation_p(sx, sy)
    mc = stats.permutation_p(sx, sy, exact_limit=0, samples=20_000, seed=1)
    assert exact.method == "exact" and exact.samples == math.comb(18, 9)
    assert mc.method == "monte-carlo" and mc.stderr > 0
    assert abs(mc.value - exact.value) < 4 * mc.stderr + 1e-3
    assert mc == stats.permutation_p(sx, sy, exact_limit=0, samples=20_000, seed=1)


def test_bootstrap_interval_is_seeded_and_covers_d() -> None:
    rng = np.random.default_rng(3)
    sx, sy = rng.normal(1, 1, 20), rng.normal(0, 1, 20)
    lo, hi = stats.bootstrap_interval(sx, sy, seed=5)
    assert lo < stats.effect_size(sx, sy) < hi
    assert (lo, hi) == stats.bootstrap_interval(sx, sy, seed=5)


def test_shift_p_separates_a_real_change_from_noise() -> None:
    rng = np.random.default_rng(0)
    bx, by = rng.normal(0.5, 0.2, 16), rng.normal(0.0, 0.2, 16)
    moved = stats.shift_p(bx, by, bx - 0.6, by, samples=2000)
    same = stats.shift_p(bx, by, bx + rng.normal(0, 0.01, 16), by + rng.normal(0, 0.01, 16), samples=2000)
    assert moved.value < 0.01 < same.value


def test_bundled_weat_tests() -> None:
    tests = weat_tests()
    assert [t.id for t in tests] == [f"weat{i}" for i in range(1, 11)]
    assert all("Caliskan" in t.source and "word2vec" in t.paper for t in tests)
    assert [t.id for t in select(tests, ["weat7", "weat1"])] == ["weat7", "weat1"]
    with pytest.raises(UsageError, match="unknown test"):
        select(tests, ["weat11"])


def test_user_tests_from_toml() -> None:
    text = """
[[test]]
id = "mine"
name = "Tools vs toys"
kind = "terms"
templates = ["A {} is on the table."]
targets = [["tools", ["hammer", "saw"]], ["toys", ["doll", "kite"]]]
attributes = [["work", ["job", "labour"]], ["play", ["game", "fun"]]]
"""
    (t,) = parse_tests(text, "mine.toml")
    assert t.targets[0].words == ("hammer", "saw") and t.templates == ("A {} is on the table.",)
    assert sentences(t.targets[0].words, ("{} is here.", "This is {}.")) == (
        "Hammer is here.", "This is hammer.", "Saw is here.", "This is saw.")
    with pytest.raises(UsageError, match="two sets"):
        parse_tests(text.replace('["toys", ["doll", "kite"]]', ""), "bad.toml")
    with pytest.raises(UsageError, match="not valid TOML"):
        parse_tests("[[test]\n", "bad.toml")
