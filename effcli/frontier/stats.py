"""Honest uncertainty for top-1 accuracy: a two-way bootstrap over test samples and replicates.

Each variant is trained R times (replicates: different training seeds, one data split) and every
replicate's prediction for each of the n shared test samples is kept as `correct`, an (R, n) bool
array. The observed statistic is the mean over replicates of the per-replicate accuracy.

Method (a hierarchical nonparametric bootstrap with B draws, seeded):

* Draw b resamples the n test samples with replacement (multinomial counts w_i[b], shape (n,))
  and the R replicates with replacement (counts w_r[b], shape (R,)), and computes
  stat[b] = sum_r w_r[b, r] * (correct[r] @ w_i[b]) / (R * n). The interval therefore carries
  both replicate-to-replicate variance and test-set sampling; with R = 1 it is the ordinary
  bootstrap over test samples. It is vectorised as `correct @ W_i.T` -> (R, B), then combined
  with W_r, with B processed in chunks so that at most ~64 MB of sample weights exist at once.
* Common random numbers: the test-sample draws depend only on (seed, test_set id, n), so every
  variant registered on the same `test_set` sees identical w_i; the replicate draws depend only
  on (seed, sorted replicate indices), so variants trained with the same replicate seeds share
  w_r (paired by replicate) and variants with other replicate tuples get independent draws.
  Generators come from `numpy.random.SeedSequence` over the seed plus a SHA-256 digest of the id
  (never the per-process salted `hash()`), and every product is a sum of small integers, exact
  in float32/float64, so results are bit-identical across processes, runs and insertion orders.
* Interval: the percentile interval of stat[b] at the requested confidence.
* Paired difference a - b: d = mean_a - mean_b, and d[b] = stat_a[b] - stat_b[b]. This is a
  paired bootstrap when both variants share the test_set; when their test sets differ the draws
  are independent and the same formula is an unpaired bootstrap. Interval: percentile interval
  of d[b]; two-sided p = min(1, 2 * min(#(d[b] <= 0) + 1, #(d[b] >= 0) + 1) / (B + 1));
  significant when the interval excludes 0.
* Replicate spread: sample std (ddof=1) of the R per-replicate accuracies, NaN when R == 1.

`replicate_interval` covers quality columns without per-sample predictions (a Student-t interval
over replicate values). Only numpy is imported at module level so `effdl frontier` starts fast.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Per chunk of draws we hold int64 indices, int64 counts and the float weights: 20 bytes/element.
_WEIGHT_BUDGET_BYTES = 64 * 1024 * 1024
_BYTES_PER_WEIGHT = 20
# float32 sums of 0/1 times counts stay exact integers below 2**24; beyond that use float64.
_FLOAT32_EXACT = 2**24


@dataclass(frozen=True)
class Estimate:
    """One variant's mean accuracy with its bootstrap interval."""

    mean: float  # mean of the per-replicate accuracies
    std: float  # ddof=1 over replicates; nan when one replicate
    low: float
    high: float
    n_replicates: int
    n_samples: int


@dataclass(frozen=True)
class Difference:
    """Mean accuracy of a minus b, with its bootstrap interval and two-sided p-value."""

    mean: float  # observed mean_a - mean_b
    low: float
    high: float
    p_value: float
    significant: bool


@dataclass(frozen=True)
class _Variant:
    correct: np.ndarray  # (R, n) bool, rows sorted by replicate index
    test_set: str
    replicates: tuple[int, ...]


def correctness(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(R, n) or (n,) predicted class ids vs (n,) labels -> (R, n) bool."""
    pred = np.asarray(predictions)
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must be 1-D (n,), got shape {lab.shape}")
    if pred.ndim == 1:
        pred = pred[np.newaxis, :]
    if pred.ndim != 2:
        raise ValueError(
            f"predictions must be class ids of shape (R, n) or (n,), got shape {pred.shape}"
            " (for scores, take argmax over the class axis first)"
        )
    if pred.shape[1] != lab.shape[0]:
        raise ValueError(
            f"predictions have {pred.shape[1]} samples per replicate but labels have "
            f"{lab.shape[0]} (shapes {pred.shape} vs {lab.shape})"
        )
    return pred == lab[np.newaxis, :]


def _generator(seed: int, *parts: object) -> np.random.Generator:
    """A generator determined only by the seed and the id parts (stable across processes)."""
    label = "\x1f".join(str(p) for p in parts).encode("utf-8")
    digest = int.from_bytes(hashlib.sha256(label).digest()[:16], "little")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, digest])))


def _counts(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """(draws, n) multinomial counts of n picks with replacement from n items."""
    # integers + one bincount is far faster than rng.multinomial with n equal categories.
    idx = rng.integers(0, n, size=(draws, n))
    idx += (np.arange(draws, dtype=idx.dtype) * n)[:, np.newaxis]
    return np.bincount(idx.ravel(), minlength=draws * n).reshape(draws, n)


def _percentile(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


class Bootstrap:
    """Two-way bootstrap of mean accuracy for many variants with common random numbers."""

    def __init__(self, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> None:
        if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 100:
            raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
        if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
            raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.n_boot = int(n_boot)
        self.confidence = float(confidence)
        self.seed = int(seed)
        self._variants: dict[Hashable, _Variant] = {}
        self._n_of_test_set: dict[str, int] = {}
        self._dist: dict[Hashable, np.ndarray] = {}
        self._replicate_weights: dict[tuple[int, ...], np.ndarray] = {}

    def add(
        self,
        key: Hashable,
        correct: np.ndarray,
        test_set: str = "test",
        replicates: Sequence[int] | None = None,
    ) -> None:
        """Register a variant's (R, n) correctness (a 1-D array is one replicate)."""
        if key in self._variants:
            raise ValueError(f"variant {key!r} was already added")
        arr = np.asarray(correct)
        if arr.ndim == 1:
            arr = arr[np.newaxis, :]
        if arr.ndim != 2:
            raise ValueError(f"correct for {key!r} must be (R, n), got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"correct for {key!r} is empty (shape {arr.shape})")
        if arr.dtype != bool:
            if not np.isin(arr, (0, 1)).all():
                raise ValueError(f"correct for {key!r} must be boolean (or 0/1), got {arr.dtype}")
            arr = arr.astype(bool)
        n_rep, n = arr.shape
        reps = tuple(range(n_rep)) if replicates is None else tuple(int(r) for r in replicates)
        if len(reps) != n_rep:
            raise ValueError(
                f"{key!r}: {len(reps)} replicate indices given for {n_rep} rows of correct"
            )
        if len(set(reps)) != len(reps):
            raise ValueError(f"{key!r}: replicate indices must be distinct, got {reps}")
        test_set = str(test_set)
        known = self._n_of_test_set.get(test_set)
        if known is not None and known != n:
            raise ValueError(
                f"{key!r}: test_set {test_set!r} has {known} samples, but correct has {n}"
            )
        # Sort rows by replicate index so pairing follows the replicate seed, not the row order.
        order = np.argsort(reps, kind="stable")
        rows = arr[order].copy()
        rows.flags.writeable = False
        self._n_of_test_set[test_set] = n
        self._variants[key] = _Variant(rows, test_set, tuple(sorted(reps)))

    def __contains__(self, key: object) -> bool:
        return key in self._variants

    def _variant(self, key: Hashable) -> _Variant:
        try:
            return self._variants[key]
        except KeyError:
            raise KeyError(f"unknown variant {key!r}; add() it first") from None

    def _weights_for(self, replicates: tuple[int, ...]) -> np.ndarray:
        """(B, R) replicate counts, shared by every variant with the same replicate tuple."""
        if replicates not in self._replicate_weights:
            rng = _generator(self.seed, "replicates", ",".join(map(str, replicates)))
            self._replicate_weights[replicates] = _counts(rng, len(replicates), self.n_boot)
        return self._replicate_weights[replicates]

    def _compute(self, test_set: str) -> None:
        """Bootstrap every not-yet-computed variant on test_set in one pass over the draws."""
        pending = [
            k for k, v in self._variants.items() if v.test_set == test_set and k not in self._dist
        ]
        n = self._n_of_test_set[test_set]
        dtype = np.float32 if n < _FLOAT32_EXACT else np.float64
        stacked = np.concatenate([self._variants[k].correct for k in pending]).astype(dtype)
        per_rep = np.empty((stacked.shape[0], self.n_boot), dtype=np.float64)
        # The chunk size depends only on n, so the draw stream is the same in every pass.
        chunk = max(1, min(self.n_boot, _WEIGHT_BUDGET_BYTES // (_BYTES_PER_WEIGHT * n)))
        rng = _generator(self.seed, "samples", test_set, n)
        for start in range(0, self.n_boot, chunk):
            stop = min(start + chunk, self.n_boot)
            w_i = _counts(rng, n, stop - start).astype(dtype)
            per_rep[:, start:stop] = np.matmul(stacked, w_i.T)
            del w_i
        row = 0
        for k in pending:
            v = self._variants[k]
            n_rep = v.correct.shape[0]
            w_r = self._weights_for(v.replicates)  # (B, R)
            block = per_rep[row : row + n_rep]  # (R, B) integer-valued, so this sum is exact
            row += n_rep
            dist = np.einsum("br,rb->b", w_r.astype(np.float64), block) / (n_rep * n)
            dist.flags.writeable = False
            self._dist[k] = dist

    def distribution(self, key: Hashable) -> np.ndarray:
        """The (B,) bootstrap statistics of a variant (computed once, read-only)."""
        v = self._variant(key)
        if key not in self._dist:
            self._compute(v.test_set)
        return self._dist[key]

    def _mean(self, key: Hashable) -> float:
        c = self._variant(key).correct
        return float(np.count_nonzero(c)) / c.size

    def estimate(self, key: Hashable) -> Estimate:
        """Mean accuracy, replicate std and percentile interval of one variant."""
        c = self._variant(key).correct
        n_rep, n = c.shape
        per_replicate = np.count_nonzero(c, axis=1) / n
        std = float(np.std(per_replicate, ddof=1)) if n_rep > 1 else math.nan
        low, high = _percentile(self.distribution(key), self.confidence)
        return Estimate(self._mean(key), std, low, high, n_rep, n)

    def difference(self, a: Hashable, b: Hashable) -> Difference:
        """Mean accuracy of a minus b: paired on a shared test_set, unpaired otherwise."""
        d = self.distribution(a) - self.distribution(b)
        low, high = _percentile(d, self.confidence)
        tail = min(np.count_nonzero(d <= 0) + 1, np.count_nonzero(d >= 0) + 1)
        p_value = min(1.0, 2.0 * tail / (self.n_boot + 1))
        return Difference(self._mean(a) - self._mean(b), low, high, p_value, low > 0 or high < 0)


def replicate_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval mean +- t_{(1+c)/2, R-1} * s / sqrt(R) over the finite values."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        # Test equality, not s == 0: the float mean/std of equal values can be off by an ulp.
        return float(x[0]), float(x[0])
    mean = float(x.mean())
    s = float(x.std(ddof=1))
    half = _t_quantile((1.0 + confidence) / 2.0, x.size - 1) * s / math.sqrt(x.size)
    return mean - half, mean + half


@lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    from scipy.stats import t  # lazy: scipy is slow to import and only needed here

    return float(t.ppf(q, df))
