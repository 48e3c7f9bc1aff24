"""effcli.frontier.stats: the two-way bootstrap against independent computations, and its contracts.

Reference values come from scipy (bootstrap, binomtest, t.interval) or from a loop-based
bootstrap written here; tolerances are a few Monte-Carlo standard errors.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from effcli.frontier.stats import (
    Bootstrap,
    Difference,
    Estimate,
    correctness,
    replicate_interval,
)

STATS_PY = Path(__file__).resolve().parents[2] / "effcli" / "frontier" / "stats.py"


def make_correct(n: int, n_correct: list[int], seed: int = 0) -> np.ndarray:
    """(R, n) bool with exactly n_correct[r] correct samples in row r, at random positions."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(n_correct), n), dtype=bool)
    for r, k in enumerate(n_correct):
        out[r, rng.choice(n, size=k, replace=False)] = True
    return out


def discordant_pair(agree_right: int, agree_wrong: int, only_a: int, only_b: int):
    """R = 1 pair with the given 2x2 McNemar table."""
    a = np.array([1] * agree_right + [0] * agree_wrong + [1] * only_a + [0] * only_b, dtype=bool)
    b = np.array([1] * agree_right + [0] * agree_wrong + [0] * only_a + [1] * only_b, dtype=bool)
    return a[None, :], b[None, :]


# --- agreement with independent computations ------------------------------------------------


def test_single_replicate_matches_scipy_percentile_bootstrap() -> None:
    x = np.array([1.0] * 340 + [0.0] * 20)
    boot = Bootstrap()
    boot.add("v", x.astype(bool))
    est = boot.estimate("v")
    ref = scipy.stats.bootstrap(
        (x,),
        np.mean,
        method="percentile",
        confidence_level=0.95,
        n_resamples=20000,
        rng=np.random.default_rng(12345),
    ).confidence_interval
    assert est.mean == pytest.approx(340 / 360)
    assert est.low == pytest.approx(ref.low, abs=0.006)
    assert est.high == pytest.approx(ref.high, abs=0.006)


def test_three_replicates_match_loop_based_two_way_bootstrap() -> None:
    n, n_boot = 360, 4000
    correct = make_correct(n, [300, 320, 335], seed=3)
    rng = np.random.default_rng(99)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        samples = rng.integers(0, n, size=n)
        reps = rng.integers(0, 3, size=3)
        total = 0.0
        for r in reps:
            total += correct[r, samples].mean()
        stats[b] = total / 3
    ref_low, ref_high = np.quantile(stats, [0.025, 0.975])

    boot = Bootstrap(n_boot=n_boot)
    boot.add("v", correct)
    est = boot.estimate("v")
    assert est.low == pytest.approx(ref_low, abs=0.008)
    assert est.high == pytest.approx(ref_high, abs=0.008)
    assert boot.distribution("v").std() == pytest.approx(stats.std(), rel=0.1)
    # Replicate variance must widen the interval beyond pure test-set sampling.
    single = Bootstrap(n_boot=n_boot)
    single.add("v", correct.reshape(1, -1))  # the same 3n outcomes as one replicate
    pooled = single.estimate("v")
    assert est.high - est.low > 1.2 * (pooled.high - pooled.low)


def test_mcnemar_ballpark_clear_discordance() -> None:
    a, b = discordant_pair(300, 25, only_a=30, only_b=5)
    boot = Bootstrap()
    boot.add("a", a)
    boot.add("b", b)
    diff = boot.difference("a", "b")
    exact = scipy.stats.binomtest(5, 35).pvalue
    assert diff.mean == pytest.approx(25 / 360)
    assert diff.p_value < 0.01 and exact < 0.01
    assert diff.significant


def test_mcnemar_ballpark_no_discordance() -> None:
    a, b = discordant_pair(320, 33, only_a=4, only_b=3)
    boot = Bootstrap()
    boot.add("a", a)
    boot.add("b", b)
    diff = boot.difference("a", "b")
    exact = scipy.stats.binomtest(3, 7).pvalue
    assert diff.p_value > 0.2 and exact > 0.2
    assert not diff.significant


# --- paired comparisons ---------------------------------------------------------------------


def test_large_difference_is_significant() -> None:
    boot = Bootstrap()
    boot.add("good", make_correct(360, [342, 342, 342], seed=1))
    boot.add("bad", make_correct(360, [288, 288, 288], seed=2))
    diff = boot.difference("good", "bad")
    assert diff.mean == pytest.approx(0.15)
    assert diff.p_value < 0.01
    assert diff.significant and diff.low > 0.05


def test_identical_variants_are_not_different() -> None:
    correct = make_correct(360, [330, 300, 345])
    boot = Bootstrap()
    boot.add("a", correct)
    boot.add("b", correct.copy())
    assert boot.difference("a", "b") == Difference(0.0, 0.0, 0.0, 1.0, False)


def test_one_sample_fix_is_not_significant() -> None:
    a = make_correct(360, [330, 320, 340], seed=5)
    j = int(np.flatnonzero(~a[0])[0])
    a[:, j] = False
    b = a.copy()
    b[:, j] = True  # b gets exactly one more sample right, in every replicate
    boot = Bootstrap()
    boot.add("a", a)
    boot.add("b", b)
    diff = boot.difference("b", "a")
    assert diff.mean == pytest.approx(1 / 360)
    assert not diff.significant
    assert diff.p_value > 0.2
    assert diff.low == 0.0  # b is never worse under any draw


def test_paired_is_much_tighter_than_unpaired() -> None:
    base = make_correct(360, [340], seed=7)
    other = base.copy()
    other[0, np.flatnonzero(~base[0])[:2]] = True  # differs on just 4 of 360 samples
    other[0, np.flatnonzero(base[0])[:2]] = False
    boot = Bootstrap()
    boot.add("a", base, test_set="shared")
    boot.add("b", other, test_set="shared")
    boot.add("a_alone", base, test_set="split-1")
    boot.add("b_alone", other, test_set="split-2")
    paired = boot.difference("a", "b")
    unpaired = boot.difference("a_alone", "b_alone")
    assert paired.mean == unpaired.mean == 0.0
    assert paired.high - paired.low < 0.5 * (unpaired.high - unpaired.low)


def test_difference_is_antisymmetric() -> None:
    boot = Bootstrap()
    boot.add("a", make_correct(360, [330, 310], seed=1))
    boot.add("b", make_correct(360, [320, 325], seed=2))
    ab, ba = boot.difference("a", "b"), boot.difference("b", "a")
    assert ab.mean == -ba.mean
    assert ab.low == pytest.approx(-ba.high) and ab.high == pytest.approx(-ba.low)
    assert ab.p_value == ba.p_value


# --- determinism and common random numbers --------------------------------------------------


def _filled(seed: int, order: list[str]) -> Bootstrap:
    arrays = {
        "x": (make_correct(500, [450, 460, 440], seed=1), "test", None),
        "y": (make_correct(500, [430, 470, 455], seed=2), "test", None),
        "z": (make_correct(200, [150, 160], seed=3), "other", [4, 9]),
        "w": (make_correct(500, [480], seed=4), "test", [2]),
    }
    boot = Bootstrap(seed=seed)
    for key in order:
        correct, test_set, reps = arrays[key]
        boot.add(key, correct, test_set=test_set, replicates=reps)
    return boot


def test_same_seed_is_bit_identical_and_order_independent() -> None:
    first = _filled(0, ["x", "y", "z", "w"])
    second = _filled(0, ["w", "z", "y", "x"])
    second.distribution("w")  # compute w alone first: a separate pass over the draws
    for key in "xyzw":
        assert np.array_equal(first.distribution(key), second.distribution(key))
        assert first.estimate(key) == second.estimate(key)
    assert first.difference("x", "y") == second.difference("x", "y")


def test_other_seed_differs_but_is_close() -> None:
    a, b = _filled(0, ["x", "y"]), _filled(1, ["x", "y"])
    ea, eb = a.estimate("x"), b.estimate("x")
    assert not np.array_equal(a.distribution("x"), b.distribution("x"))
    assert ea.mean == eb.mean
    assert ea.low == pytest.approx(eb.low, abs=0.01)
    assert ea.high == pytest.approx(eb.high, abs=0.01)


def test_bit_identical_in_another_process() -> None:
    code = (
        "import hashlib, importlib.util, sys, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('s', {str(STATS_PY)!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['s'] = m\n"
        "spec.loader.exec_module(m)\n"
        "rng = np.random.default_rng(0)\n"
        "b = m.Bootstrap(); b.add('v', rng.random((3, 700)) < 0.8, test_set='split-A')\n"
        "print(hashlib.sha256(b.distribution('v').tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's hash() salt must not matter
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    rng = np.random.default_rng(0)
    boot = Bootstrap()
    boot.add("v", rng.random((3, 700)) < 0.8, test_set="split-A")
    assert out.stdout.strip() == hashlib.sha256(boot.distribution("v").tobytes()).hexdigest()


def test_copies_share_draws() -> None:
    correct = make_correct(400, [350, 360, 340], seed=11)
    boot = Bootstrap()
    boot.add("v", correct)
    boot.add("copy", correct.copy())
    boot.add("shuffled_rows", correct[[2, 0, 1]], replicates=[2, 0, 1])
    assert np.array_equal(boot.distribution("v"), boot.distribution("copy"))
    assert np.array_equal(boot.distribution("v"), boot.distribution("shuffled_rows"))
    assert not np.any(boot.distribution("v") - boot.distribution("copy"))


def test_other_replicate_seeds_get_independent_draws() -> None:
    correct = make_correct(400, [350, 360, 340], seed=11)
    boot = Bootstrap()
    boot.add("seeds012", correct)
    boot.add("seeds345", correct, replicates=[3, 4, 5])
    boot.add("other_split", correct, test_set="other")
    d = boot.distribution("seeds012")
    assert not np.array_equal(d, boot.distribution("seeds345"))
    assert not np.array_equal(d, boot.distribution("other_split"))
    assert boot.difference("seeds012", "seeds345").mean == 0.0


def test_distribution_is_cached_and_read_only() -> None:
    boot = Bootstrap(n_boot=500)
    boot.add("v", make_correct(100, [80]))
    dist = boot.distribution("v")
    assert dist.shape == (500,)
    assert boot.distribution("v") is dist
    with pytest.raises(ValueError):
        dist[0] = 0.0


# --- estimates ------------------------------------------------------------------------------


def test_std_is_ddof1_over_replicates() -> None:
    correct = make_correct(360, [300, 320, 335])
    boot = Bootstrap()
    boot.add("three", correct)
    boot.add("one", correct[:1])
    est = boot.estimate("three")
    accs = np.array([300, 320, 335]) / 360
    assert est == Estimate(
        mean=pytest.approx(accs.mean()),
        std=pytest.approx(np.std(accs, ddof=1)),
        low=est.low,
        high=est.high,
        n_replicates=3,
        n_samples=360,
    )
    assert est.low < est.mean < est.high
    assert math.isnan(boot.estimate("one").std)


def test_large_test_set_is_fast_and_narrow() -> None:
    correct = np.random.default_rng(2).random((3, 20_000)) < 0.9
    boot = Bootstrap(n_boot=2000)
    boot.add("big", correct)
    est = boot.estimate("big")
    assert est.low < est.mean < est.high
    assert est.high - est.low < 0.015


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    n_rep=st.integers(1, 4),
    p=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_interval_is_a_valid_accuracy_range(n: int, n_rep: int, p: float, seed: int) -> None:
    correct = np.random.default_rng(seed).random((n_rep, n)) < p
    boot = Bootstrap(n_boot=100, seed=seed)
    boot.add("v", correct)
    est = boot.estimate("v")
    assert 0.0 <= est.low <= est.high <= 1.0
    assert est.mean == pytest.approx(correct.mean())
    if correct.all() or not correct.any():
        assert est.low == est.high == est.mean


def test_correctness() -> None:
    labels = np.array([0, 1, 2, 1])
    preds = np.array([[0, 1, 1, 1], [2, 1, 2, 0]])
    assert correctness(preds, labels).tolist() == [[1, 1, 0, 1], [0, 1, 1, 0]]
    assert correctness(preds[0], labels).shape == (1, 4)


def test_replicate_interval_matches_scipy_t() -> None:
    values = [0.91, 0.93, 0.90, 0.94]
    ref = scipy.stats.t.interval(0.9, df=3, loc=np.mean(values), scale=scipy.stats.sem(values))
    assert replicate_interval(values, confidence=0.9) == pytest.approx(ref)
    assert replicate_interval([0.91, float("nan"), 0.93]) == pytest.approx(
        replicate_interval([0.91, 0.93])
    )
    assert all(math.isnan(v) for v in replicate_interval([0.9, float("nan")]))
    assert all(math.isnan(v) for v in replicate_interval([]))
    assert replicate_interval([0.8, 0.8, 0.8]) == (0.8, 0.8)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preds", "labels", "message"),
    [
        (np.zeros((2, 5)), np.zeros(4), "5 samples per replicate but labels have 4"),
        (np.zeros((2, 4, 3)), np.zeros(4), "argmax"),
        (np.zeros(4), np.zeros((4, 1)), "labels must be 1-D"),
    ],
)
def test_correctness_rejects_bad_shapes(preds, labels, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        correctness(preds, labels)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 0.0}, "confidence must be in"),
        ({"confidence": 1.0}, "confidence must be in"),
        ({"confidence": 95}, "confidence must be in"),
        ({"n_boot": 50}, "n_boot must be an integer >= 100"),
        ({"seed": -1}, "seed must be a non-negative"),
    ],
)
def test_bootstrap_rejects_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Bootstrap(**kwargs)


def test_add_rejects_bad_input() -> None:
    boot = Bootstrap()
    boot.add("v", np.ones((2, 10), dtype=bool))
    with pytest.raises(ValueError, match="'v' was already added"):
        boot.add("v", np.ones((2, 10), dtype=bool))
    with pytest.raises(ValueError, match="is empty"):
        boot.add("e", np.zeros((0, 10), dtype=bool))
    with pytest.raises(ValueError, match="is empty"):
        boot.add("e", np.zeros((3, 0), dtype=bool))
    with pytest.raises(ValueError, match="test_set 'test' has 10 samples, but correct has 11"):
        boot.add("w", np.ones((2, 11), dtype=bool))
    with pytest.raises(ValueError, match="3 replicate indices given for 2 rows"):
        boot.add("w", np.ones((2, 10), dtype=bool), replicates=[0, 1, 2])
    with pytest.raises(ValueError, match="must be distinct"):
        boot.add("w", np.ones((2, 10), dtype=bool), replicates=[1, 1])
    with pytest.raises(ValueError, match="boolean"):
        boot.add("w", np.full((2, 10), 0.5))
    with pytest.raises(ValueError, match=r"must be \(R, n\)"):
        boot.add("w", np.ones((2, 10, 1), dtype=bool))
    assert "w" not in boot and "v" in boot
    boot.add("w", np.ones((2, 11), dtype=int), test_set="other")  # 0/1 ints are accepted
    assert boot.estimate("w").mean == 1.0


def test_unknown_key_raises_key_error_naming_it() -> None:
    boot = Bootstrap()
    boot.add("known", np.ones((1, 10), dtype=bool))
    with pytest.raises(KeyError, match="nope"):
        boot.estimate("nope")
    with pytest.raises(KeyError, match="nope"):
        boot.difference("known", "nope")
    with pytest.raises(KeyError, match="nope"):
        boot.distribution("nope")


def test_module_imports_only_numpy() -> None:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('s', {str(STATS_PY)!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['s'] = m\n"
        "spec.loader.exec_module(m)\n"
        "print('scipy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
