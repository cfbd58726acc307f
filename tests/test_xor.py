"""Tests for the temporal XOR task (spikefleet.tasks.xor).

Numbers are checked against independent references: plain Python loops over samples,
``np.convolve`` and closed-form bounds of the sampling rules.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from spikefleet.tasks import xor
from spikefleet.tasks.xor import XorBatch, XorConfig, accuracy, decide, gaussian_kernel, generate, smooth_output

T = 1.0
I_D = 2.0 / 3.0 * T
LAST = 2.0 / 3.0 * I_D  # 0.4444 s
N_STAT = 5000


@pytest.fixture(scope="module")
def ref_batch() -> XorBatch:
    return generate(N_STAT, seed=123)


@pytest.fixture(scope="module")
def cor_batch() -> XorBatch:
    return generate(N_STAT, seed=123, config=XorConfig(mode="corrected"))


# ----------------------------------------------------------------------------------
# independent reference helpers
# ----------------------------------------------------------------------------------
def loop_kernel(sigma: float) -> np.ndarray:
    assert float(sigma).is_integer()  # tests only use whole-sample widths
    half = 4 * int(sigma)
    vals = [math.exp(-(x * x) / (2 * sigma * sigma)) for x in range(-half, half + 1)]
    total = sum(vals)
    return np.array([v / total for v in vals])


def loop_input(pulses: np.ndarray, signs: np.ndarray, dt: float, n_steps: int) -> np.ndarray:
    raw = np.zeros(n_steps)
    for n in range(n_steps):
        t = n * dt
        for k in range(2):
            if pulses[k, 0] <= t < pulses[k, 1]:
                raw[n] = signs[k]
    return raw


def loop_target_raw(end2: float, xor_true: bool, dt: float, n_steps: int) -> np.ndarray:
    start = math.floor((end2 + 0.05) / dt)
    stop = math.floor(end2 / dt) + round(0.3 / dt)
    raw = np.zeros(n_steps)
    for n in range(max(0, start), min(n_steps, stop)):
        raw[n] = 1.0 if xor_true else -1.0
    return raw


def loop_smooth(y: np.ndarray) -> np.ndarray:
    out = np.empty(len(y))
    out[0] = y[0]
    for t in range(1, len(y)):
        out[t] = 0.95 * out[t - 1] + 0.05 * y[t]
    return out


# ----------------------------------------------------------------------------------
# shapes and dtypes
# ----------------------------------------------------------------------------------
def test_shapes_and_dtypes():
    b = generate(7, seed=0)
    assert b.inputs.shape == (7, 1000, 1) and b.inputs.dtype == np.float32
    assert b.targets.shape == (7, 1000, 1) and b.targets.dtype == np.float32
    assert b.labels.shape == (7,) and b.labels.dtype == np.int32
    assert b.classes.shape == (7,) and b.classes.dtype == np.int32
    assert b.pulses.shape == (7, 2, 2) and b.pulses.dtype == np.float64
    assert b.signs.shape == (7, 2) and b.signs.dtype == np.int8
    assert set(np.unique(b.signs)) <= {-1, 1}
    b2 = generate(3, seed=0, config=XorConfig(duration=0.5, dt=2e-3))
    assert b2.inputs.shape == (3, 250, 1)


# ----------------------------------------------------------------------------------
# generator statistics
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["ref_batch", "cor_batch"])
def test_pulse_durations(which, request):
    b = request.getfixturevalue(which)
    d = b.pulses[:, :, 1] - b.pulses[:, :, 0]
    lo, hi = I_D / 10, I_D / 4
    assert d.min() >= lo - 1e-12 and d.max() <= hi + 1e-12
    if which == "ref_batch":
        # reference mode: every draw is accepted, so durations are U(lo, hi) exactly
        assert abs(d.mean() - (lo + hi) / 2) < 0.002
        assert abs(d.std() - (hi - lo) / math.sqrt(12)) < 0.002
    # the first pulse starts inside the trial and its end obeys end1 >= d1
    assert b.pulses[:, 0, 0].min() >= -1e-12
    assert np.all(b.pulses[:, 0, 1] <= LAST - d[:, 1] + 1e-12)
    # pulses are ordered and do not overlap
    assert np.all(b.pulses[:, 1, 0] >= b.pulses[:, 0, 1] - 1e-12)


def test_corrected_mode_gap_and_end(cor_batch):
    gap = cor_batch.pulses[:, 1, 0] - cor_batch.pulses[:, 0, 1]
    assert gap.min() >= 0.1 - 1e-12
    assert cor_batch.pulses[:, 1, 1].max() <= LAST + 1e-12


def test_reference_mode_quirk(ref_batch):
    gap = ref_batch.pulses[:, 1, 0] - ref_batch.pulses[:, 0, 1]
    end2 = ref_batch.pulses[:, 1, 1]
    assert gap.min() >= -1e-12
    assert end2.max() <= LAST + 0.1 + 1e-12 and end2.max() <= 0.545
    # the empty-interval quirk happens: some gaps shorter than 100 ms, some pulses end late
    assert np.mean(gap < 0.09) > 0.05
    assert np.any(end2 > LAST + 1e-6)
    # and where the interval is non-empty the gap is the intended >= 100 ms
    d2 = end2 - ref_batch.pulses[:, 1, 0]
    nonempty = ref_batch.pulses[:, 0, 1] + 0.1 <= LAST - d2
    assert nonempty.any() and gap[nonempty].min() >= 0.1 - 1e-12
    # where empty, start2 lies between the swapped bounds
    empty = ~nonempty
    start2 = ref_batch.pulses[empty, 1, 0]
    high, low = LAST - d2[empty], ref_batch.pulses[empty, 0, 1] + 0.1
    assert np.all(start2 >= high - 1e-12)
    assert np.all(start2 <= low + 1e-12)
    # ... uniformly: the relative position u = (start2 - low) / (high - low) is U(0, 1)
    u = (start2 - low) / (high - low)
    assert empty.sum() > 1000
    assert abs(u.mean() - 0.5) < 0.03 and abs(u.std() - 1 / math.sqrt(12)) < 0.03


@pytest.mark.parametrize("which", ["ref_batch", "cor_batch"])
def test_label_and_class_balance(which, request):
    b = request.getfixturevalue(which)
    assert abs(b.labels.mean() - 0.5) < 0.03
    freq = np.bincount(b.classes, minlength=4) / len(b.classes)
    assert freq.shape == (4,)
    assert np.all(np.abs(freq - 0.25) < 0.03)
    # class encoding (+,+)=0, (+,-)=1, (-,+)=2, (-,-)=3
    expected = np.array([{(1, 1): 0, (1, -1): 1, (-1, 1): 2, (-1, -1): 3}[(int(s1), int(s2))] for s1, s2 in b.signs])
    np.testing.assert_array_equal(b.classes, expected)
    # label is XOR of the signs
    np.testing.assert_array_equal(b.labels, (b.signs[:, 0] != b.signs[:, 1]).astype(np.int32))


@pytest.mark.parametrize("which", ["ref_batch", "cor_batch"])
def test_target_window_and_normalisation(which, request):
    b = request.getfixturevalue(which)
    dt = 1e-3
    end2 = b.pulses[:, 1, 1]
    start = np.floor((end2 + 0.05) / dt).astype(int)
    stop = np.floor(end2 / dt).astype(int) + 300
    assert np.all(stop - start == 250)
    # the smoothing kernel (sigma 20 samples, support +-80) makes the target non-zero on
    # exactly [start - 80, stop - 1 + 80]
    nz = b.targets[:, :, 0] != 0
    first = nz.argmax(axis=1)
    last = nz.shape[1] - 1 - nz[:, ::-1].argmax(axis=1)
    np.testing.assert_array_equal(first, start - 80)
    np.testing.assert_array_equal(last, stop - 1 + 80)
    # max |y| == 1 and the sign is the XOR
    peak = np.abs(b.targets[:, :, 0]).max(axis=1)
    np.testing.assert_array_equal(peak, np.ones_like(peak))
    xor_true = b.signs[:, 0] != b.signs[:, 1]
    assert np.all(b.targets[xor_true].max(axis=(1, 2)) == 1.0)
    assert np.all(b.targets[xor_true].min(axis=(1, 2)) >= 0.0)
    assert np.all(b.targets[~xor_true].min(axis=(1, 2)) == -1.0)
    assert np.all(b.targets[~xor_true].max(axis=(1, 2)) <= 0.0)
    # the public helper agrees
    ws, we = xor.target_window(end2)
    np.testing.assert_array_equal(ws, start)
    np.testing.assert_array_equal(we, stop)


def test_target_matches_loop_reference(ref_batch):
    dt, n_steps = 1e-3, 1000
    k = loop_kernel(20.0)
    assert len(k) == 161
    for i in range(0, N_STAT, 50):  # 100 trials
        raw = loop_target_raw(ref_batch.pulses[i, 1, 1], ref_batch.signs[i, 0] != ref_batch.signs[i, 1], dt, n_steps)
        assert np.count_nonzero(raw) == 250
        y = np.convolve(raw, k, mode="same")
        y /= np.abs(y).max()
        np.testing.assert_allclose(ref_batch.targets[i, :, 0], y, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------------
# input signal
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config, sigma",
    [
        (XorConfig(), 10.0),
        (XorConfig(amplitude=2.5), 10.0),
        (XorConfig(mode="corrected"), 10.0),
        (XorConfig(dt=5e-4), 10.0),  # reference: sigma stays 10 samples
        (XorConfig(dt=5e-4, mode="corrected"), 20.0),  # corrected: sigma is 10 ms
    ],
)
def test_inputs_match_loop_reference(config, sigma):
    b = generate(12, seed=7, config=config)
    n_steps = round(config.duration / config.dt)
    k = loop_kernel(sigma)
    assert len(k) == 2 * round(4 * sigma) + 1
    for i in range(12):
        raw = loop_input(b.pulses[i], b.signs[i], config.dt, n_steps)
        expected = config.amplitude * np.convolve(raw, k, mode="same")
        np.testing.assert_allclose(b.inputs[i, :, 0], expected, atol=1e-6, rtol=0)
        # raw box lengths agree with the pulse durations to within one sample
        assert abs(np.count_nonzero(raw) * config.dt - np.sum(b.pulses[i, :, 1] - b.pulses[i, :, 0])) <= 2 * config.dt


def test_corrected_target_sigma_scales_with_dt():
    config = XorConfig(dt=5e-4, mode="corrected")
    b = generate(5, seed=3, config=config)
    k = loop_kernel(40.0)  # 20 ms at 0.5 ms
    for i in range(5):
        raw = loop_target_raw(b.pulses[i, 1, 1], b.signs[i, 0] != b.signs[i, 1], config.dt, 2000)
        assert np.count_nonzero(raw) == 500
        y = np.convolve(raw, k, mode="same")
        y /= np.abs(y).max()
        np.testing.assert_allclose(b.targets[i, :, 0], y, atol=1e-6, rtol=0)


def test_gaussian_kernel():
    for sigma in (1.0, 2.5, 10.0, 20.0, 0.01 / 0.001):
        k = gaussian_kernel(sigma)
        half = math.ceil(4 * sigma - 1e-9)
        assert k.shape == (2 * half + 1,)
        assert abs(k.sum() - 1.0) < 1e-12
        np.testing.assert_allclose(k, k[::-1], rtol=0, atol=1e-15)
        assert int(np.argmax(k)) == half
        np.testing.assert_allclose(k[half + 3] / k[half], math.exp(-9 / (2 * sigma**2)), rtol=1e-12)
    np.testing.assert_allclose(gaussian_kernel(10.0), loop_kernel(10.0), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="sigma_samples"):
        gaussian_kernel(0.0)


# ----------------------------------------------------------------------------------
# smoothing and decision rule
# ----------------------------------------------------------------------------------
def test_smooth_output_matches_loop():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(4, 300))
    s = smooth_output(y)
    assert s.shape == y.shape
    for i in range(4):
        np.testing.assert_allclose(s[i], loop_smooth(y[i]), rtol=0, atol=1e-12)
    # [n, T, 1] and [T] layouts
    s3 = smooth_output(y[:, :, None])
    assert s3.shape == (4, 300, 1)
    np.testing.assert_allclose(s3[:, :, 0], s, rtol=0, atol=1e-12)
    np.testing.assert_allclose(smooth_output(y[2]), loop_smooth(y[2]), rtol=0, atol=1e-12)
    # constant input stays constant (initial condition y'[0] = y[0])
    np.testing.assert_allclose(smooth_output(np.full(50, 0.7)), np.full(50, 0.7), rtol=0, atol=1e-12)


def bump(n_steps: int, height: float, start: int, length: int) -> np.ndarray:
    y = np.zeros(n_steps)
    y[start : start + length] = height
    return y


def test_decide_hand_built_cases():
    pos = bump(1000, 1.0, 300, 200)
    neg = bump(1000, -1.0, 300, 200)
    flat = np.zeros(1000)
    both = pos + bump(1000, -1.0, 600, 200)
    both_neg_first = neg + bump(1000, 1.0, 600, 200)
    short = bump(1000, 1.0, 300, 5)  # after smoothing peaks ~0.23 < 0.5
    batch = np.stack([pos, neg, flat, both, both_neg_first, short])
    np.testing.assert_array_equal(decide(batch), [1, 0, -1, 1, 1, -1])
    np.testing.assert_array_equal(decide(batch[:, :, None]), [1, 0, -1, 1, 1, -1])
    # single trials give 0-d results
    assert decide(pos).shape == () and int(decide(pos)) == 1
    assert int(decide(neg[:, None])) == 0
    assert int(decide(flat)) == -1
    # threshold is on the smoothed signal: a constant 0.5 is not > 0.5, 0.51 is
    assert int(decide(np.full(100, 0.5))) == -1
    assert int(decide(np.full(100, 0.51))) == 1
    assert int(decide(np.full(100, -0.51))) == 0


def test_accuracy():
    pos = bump(500, 1.0, 100, 200)
    neg = -pos
    flat = np.zeros(500)
    y = np.stack([pos, neg, flat, pos])
    assert accuracy(y, np.array([1, 0, 0, 0])) == 0.5  # flat is "no decision" -> wrong
    assert accuracy(y[:, :, None], np.array([1, 0, 1, 1])) == 0.75
    with pytest.raises(ValueError, match="labels"):
        accuracy(y, np.array([1, 0]))


def test_target_as_output_has_full_accuracy():
    for mode in ("reference", "corrected"):
        b = generate(500, seed=11, config=XorConfig(mode=mode))
        assert accuracy(b.targets, b.labels) == 1.0
        np.testing.assert_array_equal(decide(b.targets), b.labels)
        # negating the targets flips every decision
        assert accuracy(-b.targets, b.labels) == 0.0


# ----------------------------------------------------------------------------------
# reproducibility and validation
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["reference", "corrected"])
def test_reproducibility(mode):
    config = XorConfig(mode=mode)
    a = generate(50, seed=42, config=config)
    b = generate(50, seed=42, config=config)
    c = generate(50, seed=43, config=config)
    for field in ("inputs", "targets", "labels", "classes", "pulses", "signs"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.pulses, c.pulses)
    assert not np.array_equal(a.inputs, c.inputs)


def test_modes_differ_only_where_quirk_applies():
    # The first draws are shared; trials accepted on the first round are identical.
    r = generate(200, seed=9)
    c = generate(200, seed=9, config=XorConfig(mode="corrected"))
    d2 = r.pulses[:, 1, 1] - r.pulses[:, 1, 0]
    ok = r.pulses[:, 0, 1] + 0.1 <= LAST - d2
    assert ok.any() and (~ok).any()
    np.testing.assert_array_equal(r.pulses[ok], c.pulses[ok])
    assert not np.array_equal(r.pulses[~ok], c.pulses[~ok])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: generate(0, 1), "n"),
        (lambda: generate(-3, 1), "n"),
        (lambda: generate(2.0, 1), "n"),
        (lambda: generate(True, 1), "n"),
        (lambda: generate(2, -1), "seed"),
        (lambda: generate(2, 1.5), "seed"),
        (lambda: XorConfig(dt=0.0), "XorConfig.dt"),
        (lambda: XorConfig(dt=-0.001), "XorConfig.dt"),
        (lambda: XorConfig(dt=1.0), "XorConfig.dt"),
        (lambda: XorConfig(duration=0.0), "XorConfig.duration"),
        (lambda: XorConfig(duration=float("nan")), "XorConfig.duration"),
        (lambda: XorConfig(duration=0.3, mode="corrected"), "XorConfig.duration"),
        (lambda: XorConfig(mode="fixed"), "XorConfig.mode"),
        (lambda: XorConfig(amplitude=float("inf")), "XorConfig.amplitude"),
    ],
)
def test_bad_inputs(call, name):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(name + ":")
    assert "expected" in str(info.value) and "got" in str(info.value)


def test_error_message_format():
    with pytest.raises(ValueError, match=r"^XorConfig\.dt: expected a positive number of seconds, got -0\.001$"):
        XorConfig(dt=-0.001)
