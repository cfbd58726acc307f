"""Temporal XOR task (Büchel et al. 2021, "Network ADS"), numpy implementation.

Each trial is a one-channel time series of duration ``T`` (default 1 s) sampled every
``dt`` (default 1 ms) on the time base ``t_n = n * dt`` for ``n = 0 .. round(T/dt) - 1``.
Two smoothed pulses of random sign arrive in the first part of the trial; after the
second pulse the network must answer +1 if the two signs differ (XOR true) and -1 if
they are equal.

Sampling of one trial (all times in seconds)
--------------------------------------------
1. Input window ``I_d = (2/3) T``; let ``L = (2/3) I_d`` (0.444 s for T = 1 s).
2. Pulse durations ``d1, d2 ~ U(I_d/10, I_d/4)`` (66.7 ms .. 166.7 ms for T = 1 s).
3. First pulse: ``end1 ~ U(d1, L - d2)``, ``start1 = end1 - d1``.
4. Second pulse: ``start2 ~ U(end1 + 0.1, L - d2)``, ``end2 = start2 + d2``.
5. Signs ``s1, s2`` are independently +1 or -1 with probability 1/2 each.  The class
   index is ``(+,+) -> 0, (+,-) -> 1, (-,+) -> 2, (-,-) -> 3``.

Every uniform draw is made as ``low + u * (high - low)`` with ``u ~ U(0, 1)``.

Reference quirk (``mode="reference"``, the default)
---------------------------------------------------
The reference implementation calls ``numpy.random.uniform(low, high)`` even when the
interval of step 4 is empty (``low > high``); numpy then returns a value between the two
bounds, i.e. uniform on ``[high, low]``.  Consequently the silent gap between the pulses
can be shorter than 100 ms (it is never negative) and the second pulse can end after
``L`` (at most ``L + 0.1 s`` = 0.544 s for T = 1 s).  This mode reproduces that
behaviour exactly: ``low + u * (high - low)`` is used whatever the order of the bounds.
The interval of step 3 is treated the same way (it is never empty, because
``d1 + d2 <= T/3 < L``).

Corrected mode (``mode="corrected"``)
-------------------------------------
Whole trials ``(d1, d2, end1, start2)`` are redrawn until both intervals are non-empty,
so the gap is always at least 100 ms and ``end2 <= L``.  This is only possible when
``T > 0.1 / (4/9 - 2/15) ≈ 0.3214 s``; shorter durations are rejected by
:class:`XorConfig`.

Input signal
------------
``x[n] = s_k`` for ``start_k <= t_n < end_k`` (k = 1, 2) and 0 elsewhere, convolved
("same" size, zero padding) with a unit-sum Gaussian kernel (see
:func:`gaussian_kernel`; support ``±ceil(4 σ)`` samples) and multiplied by
``amplitude``.  σ is 10 *samples* in reference mode (so in time it scales with ``dt``)
and 10 ms, i.e. ``0.01/dt`` samples, in corrected mode.

Target
------
The raw target is ``+1`` if ``s1 != s2`` and ``-1`` otherwise on the samples
``floor((end2 + 0.05)/dt) <= n < floor(end2/dt) + floor(0.3/dt)`` (250 samples at
``dt = 1 ms``; indices clipped to the trial), 0 elsewhere.  It is convolved ("same",
zero padding) with a unit-sum Gaussian of σ = 20 samples (reference) or 20 ms
(corrected) and divided by its maximum absolute value, so ``max |y| = 1`` in every trial
(a trial whose window lies entirely outside the trial keeps an all-zero target).  The
floors use a tolerance of 1e-9 samples so that exact multiples such as ``0.3/dt`` are not
lost to rounding.

Label and decision rule
-----------------------
The label is 1 iff the target exceeds 0.5 somewhere (i.e. XOR true), else 0.  A model
output ``y[t]`` is first smoothed, ``y'[0] = y[0]``,
``y'[t] = 0.95 y'[t-1] + 0.05 y[t]`` (:func:`smooth_output`); the predicted label is 1
if any ``y' > 0.5``, otherwise 0 if any ``y' < -0.5``, otherwise -1 ("no decision",
always counted as an error) (:func:`decide`).  Accuracy is ``mean(pred == label)``
(:func:`accuracy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy.signal import lfilter
import jax
import jax.numpy as jnp

from spikefleet.errors import ConfigError, expect

__all__ = [
    "MODES",
    "XorConfig",
    "XorBatch",
    "generate",
    "smooth_output",
    "decide",
    "accuracy",
    "gaussian_kernel",
    "target_window",
]

#: generation modes (module docstring)
MODES = ("reference", "corrected")

#: Minimum silent gap between the pulses (s), as intended by the paper.
GAP = 0.1
#: Delay from the end of the second pulse to the start of the target window (s).
TARGET_DELAY = 0.05
#: End of the target window, measured from the end of the second pulse (s).
TARGET_END = 0.3
#: Input / target smoothing widths: samples in reference mode, seconds in corrected mode.
INPUT_SIGMA_SAMPLES = 10.0
TARGET_SIGMA_SAMPLES = 20.0
INPUT_SIGMA_S = 0.01
TARGET_SIGMA_S = 0.02
#: Decision rule constants.
SMOOTH_DECAY = 0.95
DECISION_THRESHOLD = 0.5

# Tolerance (in samples) used by floors/ceils of quantities that are integers in exact
# arithmetic (e.g. 0.3 / dt) but may land just below one in floating point.
_TOL = 1e-9
# Upper bound on rejection rounds in corrected mode before giving up.
_MAX_REJECTION_ROUNDS = 100_000
# Number of (trial x sample) values processed at once when building signals.
_CHUNK_ELEMENTS = 1 << 22


def _min_corrected_duration() -> float:
    """Shortest T for which the start2 interval can be non-empty (corrected mode)."""
    # Need min(d1 + d2) + GAP < L, i.e. 2 * (2/3 T)/10 + 0.1 < 4/9 T.
    return GAP / (4.0 / 9.0 - 2.0 * (2.0 / 3.0) / 10.0)


def _is_real(x: object) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _is_integral(x: object) -> bool:
    """Python or NumPy integer, not a bool (XOR sizes may come from NumPy arithmetic)."""
    return isinstance(x, Integral) and not isinstance(x, bool)


@dataclass(frozen=True)
class XorConfig:
    """Parameters of the temporal XOR task.

    Attributes:
        duration: trial length T in seconds (> 0).
        dt: sampling step in seconds (0 < dt < duration).
        amplitude: factor applied to the smoothed input signal (finite).
        mode: ``"reference"`` (default, reproduces the reference implementation
            including its sampling quirk and σ in samples) or ``"corrected"`` (rejection
            sampling, σ in seconds).  See the module docstring.
    """

    duration: float = 1.0
    dt: float = 1e-3
    amplitude: float = 1.0
    mode: str = "reference"

    def __post_init__(self) -> None:
        expect(
            _is_real(self.duration) and math.isfinite(self.duration) and self.duration > 0,
            "XorConfig.duration",
            "a positive number of seconds",
            self.duration,
        )
        expect(
            _is_real(self.dt) and math.isfinite(self.dt) and self.dt > 0,
            "XorConfig.dt",
            "a positive number of seconds",
            self.dt,
        )
        expect(
            self.dt < self.duration,
            "XorConfig.dt",
            f"a step shorter than XorConfig.duration={self.duration!r} s",
            self.dt,
        )
        expect(
            _is_real(self.amplitude) and math.isfinite(self.amplitude),
            "XorConfig.amplitude",
            "a finite number",
            self.amplitude,
        )
        expect(
            isinstance(self.mode, str) and self.mode in MODES,
            "XorConfig.mode",
            "one of " + ", ".join(repr(m) for m in MODES),
            self.mode,
        )
        if self.mode == "corrected":
            t_min = _min_corrected_duration()
            expect(
                self.duration > t_min,
                "XorConfig.duration",
                f"more than {t_min:.4f} s in corrected mode (otherwise the two pulses "
                f"cannot be {GAP} s apart); use a longer duration or mode='reference'",
                self.duration,
            )

    @property
    def n_steps(self) -> int:
        """Number of samples per trial, ``round(duration / dt)``."""
        return int(round(self.duration / self.dt))

    @property
    def input_window(self) -> float:
        """Input window ``I_d = (2/3) duration`` in seconds."""
        return 2.0 / 3.0 * self.duration

    @property
    def input_sigma_samples(self) -> float:
        """σ of the input smoothing kernel in samples (10, or 0.01/dt when corrected)."""
        if self.mode == "reference":
            return INPUT_SIGMA_SAMPLES
        return INPUT_SIGMA_S / self.dt

    @property
    def target_sigma_samples(self) -> float:
        """σ of the target smoothing kernel in samples (20, or 0.02/dt when corrected)."""
        if self.mode == "reference":
            return TARGET_SIGMA_SAMPLES
        return TARGET_SIGMA_S / self.dt


@dataclass(frozen=True, eq=False)
class XorBatch:
    """A batch of XOR trials produced by :func:`generate`.

    Attributes:
        inputs: ``[n, T, 1]`` float32 smoothed input signal.
        targets: ``[n, T, 1]`` float32 smoothed target, ``max |y| = 1`` per trial.
        labels: ``[n]`` int32, 1 if XOR is true (signs differ), else 0.
        classes: ``[n]`` int32 sign pattern, (+,+)=0, (+,-)=1, (-,+)=2, (-,-)=3.
        pulses: ``[n, 2, 2]`` float64 seconds, ``pulses[i, k] = (start_k, end_k)``.
        signs: ``[n, 2]`` int8 pulse signs (±1).
    """

    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    pulses: np.ndarray
    signs: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def gaussian_kernel(sigma_samples: float) -> np.ndarray:
    """Unit-sum Gaussian kernel with standard deviation ``sigma_samples`` (in samples).

    The support is ``-h .. h`` with ``h = ceil(4 σ)`` (a tolerance of 1e-9 is applied so
    that e.g. σ = 0.01/0.001 gives h = 40), so the kernel has ``2h + 1`` taps and its
    centre tap is at index ``h``.  Returns a float64 array.
    """
    expect(
        _is_real(sigma_samples) and math.isfinite(sigma_samples) and sigma_samples > 0,
        "sigma_samples",
        "a positive finite number of samples",
        sigma_samples,
    )
    half = int(math.ceil(4.0 * float(sigma_samples) - _TOL))
    x = np.arange(-half, half + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / float(sigma_samples)) ** 2)
    return k / k.sum()


def _uniform(low: np.ndarray, high: np.ndarray, u: np.ndarray) -> np.ndarray:
    """numpy-style uniform(low, high): ``low + u (high - low)`` whatever the bound order."""
    return low + u * (high - low)


def _sample_times(
    n: int, rng: np.random.Generator, config: XorConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``d1, d2, end1, start2`` for ``n`` trials; returns them and an accept mask."""
    i_d = config.input_window
    last = 2.0 / 3.0 * i_d
    d = _uniform(i_d / 10.0, i_d / 4.0, rng.random((n, 2)))
    u = rng.random((n, 2))
    d1, d2 = d[:, 0], d[:, 1]
    lo1, hi1 = d1, last - d2
    end1 = _uniform(lo1, hi1, u[:, 0])
    lo2, hi2 = end1 + GAP, last - d2
    start2 = _uniform(lo2, hi2, u[:, 1])
    ok = (lo1 <= hi1) & (lo2 <= hi2)
    return d1, d2, end1, start2, ok


def _first_sample_at_or_after(t: np.ndarray, dt: float, n_steps: int) -> np.ndarray:
    """Smallest ``m`` with ``m * dt >= t`` (clipped to ``0 .. n_steps``), int64.

    Computed with ``ceil`` and then corrected by one step where floating point puts the
    comparison ``m * dt >= t`` on the other side, so it agrees exactly with a sample-wise
    test on the time base ``t_m = m * dt``.
    """
    m = np.ceil(t / dt).astype(np.int64)
    m = np.where((m - 1) * dt >= t, m - 1, m)
    m = np.where(m * dt < t, m + 1, m)
    return np.clip(m, 0, n_steps)


def _floor_tol(x: np.ndarray | float) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + _TOL).astype(np.int64)


def target_window(end2: np.ndarray | float, config: XorConfig = XorConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices ``[start, stop)`` of the raw (unsmoothed) target window.

    ``start = floor((end2 + 0.05)/dt)``, ``stop = floor(end2/dt) + floor(0.3/dt)``, both
    clipped to ``0 .. n_steps`` (floors with a 1e-9-sample tolerance).  ``end2`` is the
    end of the second pulse in seconds (scalar or array); returns int64 arrays of the
    same shape.
    """
    end2 = np.asarray(end2, dtype=np.float64)
    dt, n_steps = config.dt, config.n_steps
    start = _floor_tol((end2 + TARGET_DELAY) / dt)
    stop = _floor_tol(end2 / dt) + _floor_tol(TARGET_END / dt)
    return np.clip(start, 0, n_steps), np.clip(stop, 0, n_steps)


def _box_convolve(a: np.ndarray, b: np.ndarray, kernel: np.ndarray, n_steps: int) -> np.ndarray:
    """Convolve ("same", zero padding) the boxes ``1[a_i <= m < b_i]`` with ``kernel``.

    The kernel has odd length ``2h + 1`` and is centred.  Output sample ``m`` is
    ``sum_{a <= j < b} kernel[m - j + h]``, a difference of two partial sums of the
    kernel, read from a lookup table of the clipped cumulative sum; this is exact zero
    outside the kernel's reach.  ``a`` and ``b`` are clipped sample indices in
    ``0 .. n_steps``.  Returns ``[len(a), n_steps]`` float64.
    """
    half = (kernel.size - 1) // 2
    cum = np.concatenate(([0.0], np.cumsum(kernel)))  # cum[i] = sum(kernel[:i])
    # table[q] = cum[clip(q - n_steps, 0, 2h + 1)] for q = m - a + h + 1 + n_steps.
    q = np.arange(2 * n_steps + kernel.size + 1) - n_steps
    table = cum[np.clip(q, 0, kernel.size)]
    # Row i is the contiguous slice table[off_i : off_i + n_steps].
    rows = np.lib.stride_tricks.sliding_window_view(table, n_steps)
    b = np.maximum(a, b)  # empty boxes give exactly zero
    return rows[n_steps + half + 1 - a] - rows[n_steps + half + 1 - b]


def generate(n: int, seed: int, config: XorConfig = XorConfig()) -> XorBatch:
    """Generate ``n`` temporal-XOR trials, deterministically from ``(seed, config)``.

    Random numbers come from ``np.random.default_rng(seed)``: first the trial times
    (durations, then the two uniform positions; in corrected mode repeated for the
    rejected trials), then the signs.  See the module docstring for the rules.

    Args:
        n: number of trials (positive int).
        seed: non-negative int seed.
        config: task parameters.

    Returns:
        An :class:`XorBatch`.

    Raises:
        ConfigError (a ValueError): for an invalid ``n``, ``seed`` or ``config``.
    """
    expect(_is_integral(n) and n > 0, "n", "a positive integer number of trials", n)
    expect(_is_integral(seed) and seed >= 0, "seed", "a non-negative integer", seed)
    expect(isinstance(config, XorConfig), "config", "an XorConfig", type(config).__name__)
    n = int(n)
    rng = np.random.default_rng(int(seed))
    dt, n_steps = config.dt, config.n_steps

    # --- pulse timing --------------------------------------------------------------
    d1, d2, end1, start2, ok = _sample_times(n, rng, config)
    if config.mode == "corrected":
        rounds = 0
        while not ok.all():
            rounds += 1
            if rounds > _MAX_REJECTION_ROUNDS:  # pragma: no cover - guarded by config
                raise ConfigError(
                    f"XorConfig.duration: expected a duration for which valid XOR trials "
                    f"can be drawn in corrected mode, got {config.duration!r} "
                    f"(no valid trial after {_MAX_REJECTION_ROUNDS} rounds)"
                )
            bad = np.flatnonzero(~ok)
            nd1, nd2, nend1, nstart2, nok = _sample_times(bad.size, rng, config)
            d1[bad], d2[bad], end1[bad], start2[bad], ok[bad] = nd1, nd2, nend1, nstart2, nok
    pulses = np.empty((n, 2, 2), dtype=np.float64)
    pulses[:, 0, 0] = end1 - d1
    pulses[:, 0, 1] = end1
    pulses[:, 1, 0] = start2
    pulses[:, 1, 1] = start2 + d2

    # --- signs, classes, XOR --------------------------------------------------------
    negative = rng.integers(0, 2, size=(n, 2))  # 1 means a negative pulse
    signs = (1 - 2 * negative).astype(np.int8)
    classes = (2 * negative[:, 0] + negative[:, 1]).astype(np.int32)
    xor_value = np.where(signs[:, 0] != signs[:, 1], 1.0, -1.0)

    # --- sample indices -----------------------------------------------------------------
    box_a = _first_sample_at_or_after(pulses[:, :, 0], dt, n_steps)  # [n, 2]
    box_b = _first_sample_at_or_after(pulses[:, :, 1], dt, n_steps)
    win_a, win_b = target_window(pulses[:, 1, 1], config)

    k_in = gaussian_kernel(config.input_sigma_samples)
    k_tg = gaussian_kernel(config.target_sigma_samples)

    inputs = np.empty((n, n_steps, 1), dtype=np.float32)
    targets = np.empty((n, n_steps, 1), dtype=np.float32)
    labels = np.empty(n, dtype=np.int32)
    chunk = max(1, _CHUNK_ELEMENTS // n_steps)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        x = signs[sl, 0, None] * _box_convolve(box_a[sl, 0], box_b[sl, 0], k_in, n_steps)
        x += signs[sl, 1, None] * _box_convolve(box_a[sl, 1], box_b[sl, 1], k_in, n_steps)
        x *= config.amplitude
        inputs[sl, :, 0] = x

        y = xor_value[sl, None] * _box_convolve(win_a[sl], win_b[sl], k_tg, n_steps)
        peak = np.abs(y).max(axis=1, keepdims=True)
        y = np.divide(y, peak, out=np.zeros_like(y), where=peak > 0)
        targets[sl, :, 0] = y
        labels[sl] = (y > DECISION_THRESHOLD).any(axis=1)

    return XorBatch(
        inputs=inputs,
        targets=targets,
        labels=labels,
        classes=classes,
        pulses=pulses,
        signs=signs,
    )


def _time_axis(y: np.ndarray) -> int:
    """Time axis of ``y``: -2 if there is a trailing singleton channel, else -1."""
    if y.ndim >= 2 and y.shape[-1] == 1:
        return -2
    return -1


def smooth_output(y: np.ndarray) -> np.ndarray:
    """Smooth a model output along time: ``y'[0] = y[0]``, ``y'[t] = 0.95 y'[t-1] + 0.05 y[t]``.

    ``y`` has shape ``[..., T]`` or ``[..., T, 1]`` (a trailing axis of size 1 on an array
    with at least two dimensions is taken as a channel axis, time is then the axis
    before it).  Returns a float64 array of the same shape.
    """
    y = np.asarray(y, dtype=np.float64)
    expect(y.ndim >= 1, "y", "an array with a time axis ([..., T] or [..., T, 1])", y.shape)
    axis = _time_axis(y)
    expect(y.shape[axis] >= 1, "y", "at least one time step", y.shape)
    zi = SMOOTH_DECAY * np.take(y, [0], axis=axis)
    out, _ = lfilter([1.0 - SMOOTH_DECAY], [1.0, -SMOOTH_DECAY], y, axis=axis, zi=zi)
    return out


def decide(y: np.ndarray) -> np.ndarray:
    """Predicted labels from model outputs with the reference decision rule.

    ``y`` is ``[n, T]`` or ``[n, T, 1]`` (a batch, returns ``[n]``), or ``[T]`` / ``[T, 1]``
    (a single trial, returns a 0-d array).  After :func:`smooth_output` the prediction is
    1 if any smoothed value exceeds 0.5, otherwise 0 if any is below -0.5, otherwise -1
    (no decision).  Returns int32.
    """
    y = np.asarray(y, dtype=np.float64)
    single = y.ndim == 1 or (y.ndim == 2 and y.shape[-1] == 1)
    batch = (y.ndim == 2 and y.shape[-1] != 1) or (y.ndim == 3 and y.shape[-1] == 1)
    expect(single or batch, "y", "shape [n, T], [n, T, 1], [T] or [T, 1]", y.shape)
    s = smooth_output(y)
    if s.shape[-1] == 1 and s.ndim >= 2:
        s = s[..., 0]
    above = (s > DECISION_THRESHOLD).any(axis=-1)
    below = (s < -DECISION_THRESHOLD).any(axis=-1)
    return np.where(above, 1, np.where(below, 0, -1)).astype(np.int32)


def accuracy(y: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of trials whose :func:`decide` prediction equals ``labels``.

    ``y`` is ``[n, T]`` or ``[n, T, 1]``; ``labels`` is ``[n]`` with values 0/1.  A "no
    decision" prediction (-1) is always wrong.
    """
    pred = np.atleast_1d(decide(y))
    labels = np.atleast_1d(np.asarray(labels))
    expect(labels.shape == pred.shape, "labels", f"shape {pred.shape} to match y", labels.shape)
    return float(np.mean(pred == labels))


def decide_jax(y):
    """:func:`decide` for a batch ``[..., T, 1]`` in JAX (jit/vmap-able); returns int32 ``[...]``.

    The smoothing ``y'[t] = 0.95 y'[t-1] + 0.05 y[t]`` (``y'[0] = y[0]``) runs as a ``lax.scan``
    over time.
    """

    y = jnp.moveaxis(y[..., 0], -1, 0)  # [T, ...]

    def body(prev, y_t):
        s = SMOOTH_DECAY * prev + (1.0 - SMOOTH_DECAY) * y_t
        return s, s

    _, smooth = jax.lax.scan(body, y[0], y[1:])
    smooth = jnp.concatenate([y[:1], smooth], axis=0)
    above = jnp.any(smooth > DECISION_THRESHOLD, axis=0)
    below = jnp.any(smooth < -DECISION_THRESHOLD, axis=0)
    return jnp.where(above, 1, jnp.where(below, 0, -1)).astype(jnp.int32)
