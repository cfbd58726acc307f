r"""Audio front end of the Hey Snips task (Büchel et al. 2021: hey Snips wake-phrase detection): Butterworth-mel filterbank envelopes.

A mono waveform ``x[s]`` sampled at ``fs = 16 kHz`` becomes ``C = 16`` envelopes sampled every
``dt = 1 ms``:

1. **Level normalisation** (Büchel et al. 2021: synthetic generator: requirements item 9, optional here): ``x ← x · r₀ / rms(x)`` with
   ``rms(x) = sqrt(mean_s x[s]²)`` over the whole 5 s window and ``r₀ = LEVEL_RMS = 0.15``
   (dimensionless full-scale units). With this level the envelopes of the synthetic and WAV
   corpora lie mainly in ``[0, 0.25]``, as in the paper. A silent waveform is left at zero.
2. **Band-pass filterbank.** Relative bandwidth ``w = filter_width / C = 2/16``. Lower edges are
   equally spaced on the mel scale ``m(f) = 2595 log₁₀(1 + f/700)``::

       f_lo,k = m⁻¹( m(f_c) + k/(C−1) · (m(fs/2 / (1+w) − 1) − m(f_c)) ),  k = 0 … C−1,
       f_hi,k = (1 + w) · f_lo,k,

   with ``f_c = cutoff_hz = 400 Hz``, so with the defaults the edges run from 400–450 Hz up to
   about 7.1–8.0 kHz. Channel ``k`` is the order-``n = 2`` digital Butterworth band-pass on
   ``[f_lo,k, f_hi,k]`` (``scipy.signal.butter(2, …, btype="band")``, bilinear transform, a
   4th-order filter run as two second-order sections). Its gain is 1 (0 dB) at the digital
   centre frequency ``f₀,k = (fs/π) arctan sqrt(tan(π f_lo,k/fs) tan(π f_hi,k/fs))``
   (:func:`centre_frequencies`) and ``1/√2`` at the two edges.
3. **Rectification** ``|b_k[s]|`` (full wave).
4. **Envelope low-pass**: order-2 digital Butterworth low-pass at ``cutoff_hz`` (the same 400 Hz,
   as in the teacher pre-training script; the paper's reservoir used 200 Hz).
5. **Downsampling** 16 kHz → 1 kHz by keeping every ``D = fs·dt = 16``-th sample:
   ``c_k[m] = e_k[D·m]``, i.e. the envelope at ``t_m = m·dt``.

All filters are causal and start from rest, as in the reference filterbank (``sosfilt``), so a
tone's envelope builds up over a few ms after ``t = 0``. The band-pass runs with
``scipy.signal.sosfilt``. Steps 4–5 are evaluated only at the kept instants, exactly: with the
low-pass in state space ``(A, B, C, d₀)`` and ``u = |b_k|``, the state at block starts obeys
``s_{m+1} = A^D s_m + Σ_{l<D} A^{D−1−l} B u[Dm + l]`` and ``c[m] = C s_m + d₀ u[Dm]``; this
D-input system's transfer functions (``scipy.signal.ss2tf``) share one denominator, so
``c = lfilter(1, den, Σ_j num_j * u_j)`` at the 1 kHz rate. It equals ``sosfilt`` followed by
``[::D]`` to ~1e-14 relative (tested) at half the cost. For a steady tone
``a sin(2π f t)`` the envelope is the rectified sine through the low-pass ``L``::

    e(t) = a |H_k(f)| ( 2/π − (4/π) Σ_{j≥1} |L(2jf)| cos(4πjft + φ_j) / (4j² − 1) ),

so its mean is ``(2/π) a |H_k(f)|`` and its ripple (at ``2f`` and harmonics) is bounded by the
sum (tests check this closed form). Computation is float64; the output is float32 ``[n, T, C]``.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter, sos2zpk, sosfilt, sosfreqz, ss2tf, zpk2ss

from spikefleet.errors import expect, is_finite_number, is_positive_int

__all__ = ["FilterbankConfig", "LEVEL_RMS", "hz_to_mel", "mel_to_hz", "band_edges", "centre_frequencies",
           "band_sos", "lowpass_sos", "decimating_lowpass", "channel_gain", "normalize_level", "filterbank",
           "front_end"]

#: Fixed RMS of the level-normalised mixture (Büchel et al. 2021: synthetic generator: requirements item 9).
LEVEL_RMS = 0.15


def hz_to_mel(f):
    """Mel value ``m = 2595 log₁₀(1 + f/700)`` of a frequency ``f`` in Hz (array or scalar)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
    """Inverse of :func:`hz_to_mel`: ``f = 700 (10^(m/2595) − 1)`` Hz."""
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


@dataclass(frozen=True)
class FilterbankConfig:
    """Front-end parameters (defaults: Büchel et al. 2021: hey Snips wake-phrase detection).

    Attributes:
        fs: input sample rate in Hz (16 kHz).
        n_channels: number of mel channels ``C`` (16).
        cutoff_hz: lowest band edge and envelope low-pass corner in Hz (400).
        filter_width: ``w · C``; the relative bandwidth is ``w = filter_width / C`` (2 → 1/8).
        order: Butterworth order of the band-pass prototypes and of the low-pass (2).
        dt: output step in seconds (1 ms); ``fs · dt`` must be an integer.
    """

    fs: float = 16000.0
    n_channels: int = 16
    cutoff_hz: float = 400.0
    filter_width: float = 2.0
    order: int = 2
    dt: float = 1e-3

    def __post_init__(self):
        expect(is_finite_number(self.fs) and self.fs > 0, "FilterbankConfig.fs", "a positive rate in Hz", self.fs)
        expect(is_positive_int(self.n_channels) and self.n_channels >= 2, "FilterbankConfig.n_channels",
               "an integer >= 2", self.n_channels)
        expect(is_positive_int(self.order), "FilterbankConfig.order", "a positive integer", self.order)
        expect(is_finite_number(self.filter_width) and self.filter_width > 0, "FilterbankConfig.filter_width",
               "a positive number", self.filter_width)
        expect(is_finite_number(self.cutoff_hz) and 0 < self.cutoff_hz < self.fs / 2 / (1 + self.bandwidth) - 1,
               "FilterbankConfig.cutoff_hz", f"a frequency in (0, {self.fs / 2 / (1 + self.bandwidth) - 1:.1f}) Hz",
               self.cutoff_hz)
        expect(is_finite_number(self.dt) and self.dt > 0 and abs(self.fs * self.dt - round(self.fs * self.dt)) < 1e-9
               and round(self.fs * self.dt) >= 1, "FilterbankConfig.dt",
               f"a positive step that is a whole number of input samples (1/fs = {1 / self.fs!r} s)", self.dt)

    @property
    def bandwidth(self) -> float:
        """Relative bandwidth ``w = filter_width / n_channels``."""
        return self.filter_width / self.n_channels

    @property
    def decimation(self) -> int:
        """Input samples per output step, ``D = fs · dt``."""
        return int(round(self.fs * self.dt))


def band_edges(config: FilterbankConfig = FilterbankConfig()) -> np.ndarray:
    """``[C, 2]`` band edges ``(f_lo, f_hi)`` in Hz (mel-spaced lower edges, ``f_hi = (1+w) f_lo``)."""
    w = config.bandwidth
    top = config.fs / 2.0 / (1.0 + w) - 1.0
    lo = mel_to_hz(np.linspace(hz_to_mel(config.cutoff_hz), hz_to_mel(top), config.n_channels))
    return np.stack([lo, lo * (1.0 + w)], axis=1)


def centre_frequencies(config: FilterbankConfig = FilterbankConfig()) -> np.ndarray:
    """``[C]`` digital centre (unit-gain) frequencies in Hz,
    ``f₀ = (fs/π) arctan sqrt(tan(π f_lo/fs) tan(π f_hi/fs))``."""
    edges = band_edges(config)
    warped = np.tan(np.pi * edges / config.fs)
    return config.fs / np.pi * np.arctan(np.sqrt(warped[:, 0] * warped[:, 1]))


def band_sos(config: FilterbankConfig = FilterbankConfig()) -> list[np.ndarray]:
    """Second-order sections of the ``C`` band-pass filters (each ``[order, 6]``)."""
    return [butter(config.order, edge, btype="band", fs=config.fs, output="sos") for edge in band_edges(config)]


def lowpass_sos(config: FilterbankConfig = FilterbankConfig()) -> np.ndarray:
    """Second-order sections of the envelope low-pass (Butterworth, corner ``cutoff_hz``)."""
    return butter(config.order, config.cutoff_hz, btype="low", fs=config.fs, output="sos")


def decimating_lowpass(config: FilterbankConfig = FilterbankConfig()) -> tuple[np.ndarray, np.ndarray]:
    """``(num [D, order+1], den [order+1])`` of the low-pass sampled every ``D`` inputs (see above)."""
    a, b, c, d0 = zpk2ss(*sos2zpk(lowpass_sos(config)))
    d = config.decimation
    powers = [np.eye(a.shape[0])]
    for _ in range(d):
        powers.append(powers[-1] @ a)
    nums = []
    for j in range(d):
        num, den = ss2tf(powers[d], powers[d - 1 - j] @ b, c, np.array([[d0[0, 0] if j == 0 else 0.0]]))
        nums.append(num[0])
    return np.stack(nums), den


def _lowpass_decimate(env: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    d = num.shape[0]
    n, s = env.shape
    t = math.ceil(s / d)
    if t * d != s:
        env = np.pad(env, ((0, 0), (0, t * d - s)))
    taps = env.reshape(n, t, d) @ num  # [n, t, order + 1]
    v = taps[..., 0].copy()
    for k in range(1, num.shape[1]):
        v[:, k:] += taps[:, :-k, k]
    return lfilter([1.0], den, v, axis=-1)


def channel_gain(freq_hz, config: FilterbankConfig = FilterbankConfig()) -> np.ndarray:
    """``[C, len(freq)]`` magnitude responses ``|H_k(f)|`` of the band-pass filters at ``freq_hz``."""
    f = np.atleast_1d(np.asarray(freq_hz, np.float64))
    return np.stack([np.abs(sosfreqz(sos, worN=f, fs=config.fs)[1]) for sos in band_sos(config)])


def normalize_level(waveforms, rms: float = LEVEL_RMS) -> np.ndarray:
    """Scale each waveform (last axis = time) to RMS ``rms``; all-zero waveforms stay zero. float64."""
    x = np.asarray(waveforms, np.float64)
    expect(is_finite_number(rms) and rms > 0, "rms", "a positive number", rms)
    power = np.sqrt(np.mean(x * x, axis=-1, keepdims=True))
    return x * np.divide(rms, power, out=np.zeros_like(power), where=power > 0)


def _as_batch(waveforms, config: FilterbankConfig) -> np.ndarray:
    x = np.asarray(waveforms)
    expect(x.ndim in (1, 2), "waveforms", "an array [samples] or [n, samples]", x.shape)
    expect(np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer), "waveforms",
           "a real-valued array", x.dtype)
    x = np.atleast_2d(x).astype(np.float64, copy=False)
    expect(x.shape[-1] >= config.decimation, "waveforms", f"at least {config.decimation} samples", x.shape)
    expect(bool(np.all(np.isfinite(x))), "waveforms", "finite values", "NaN or inf")
    return x


def filterbank(waveforms, config: FilterbankConfig = FilterbankConfig(), *, workers: int | None = None,
               chunk: int = 32) -> np.ndarray:
    """Filterbank envelopes (steps 2–5 above) of ``waveforms`` ``[n, S]`` (or ``[S]``) at ``config.fs``.

    Returns float32 ``[n, ceil(S / D), C]`` (``[ceil(S/D), C]`` for a single waveform); 5 s at
    16 kHz gives ``T = 5000``. ``workers`` threads (default ``min(2, cpu count)``) filter
    different channels concurrently (SciPy releases the GIL); the result does not depend on
    ``workers`` or ``chunk`` (waveforms processed at once).
    """
    single = np.asarray(waveforms).ndim == 1
    x = _as_batch(waveforms, config)
    expect(is_positive_int(chunk), "chunk", "a positive integer", chunk)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    expect(is_positive_int(workers), "workers", "a positive integer", workers)
    bands, (num, den) = band_sos(config), decimating_lowpass(config)
    n, s = x.shape
    out = np.empty((n, math.ceil(s / config.decimation), config.n_channels), np.float32)

    def channel(args):
        k, block, lo = args
        env = np.abs(sosfilt(bands[k], block, axis=-1))
        out[lo:lo + block.shape[0], :, k] = _lowpass_decimate(env, num, den)

    jobs = [(k, x[lo:lo + chunk], lo) for lo in range(0, n, chunk) for k in range(config.n_channels)]
    if workers == 1:
        for job in jobs:
            channel(job)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(channel, jobs))
    return out[0] if single else out


def front_end(waveforms, config: FilterbankConfig = FilterbankConfig(), *, rms: float | None = LEVEL_RMS,
              workers: int | None = None) -> np.ndarray:
    """Level normalisation to ``rms`` (skipped when ``None``) followed by :func:`filterbank`."""
    x = _as_batch(waveforms, config) if rms is not None else waveforms
    if rms is not None:
        x = normalize_level(x, rms)
        if np.asarray(waveforms).ndim == 1:
            x = x[0]
    return filterbank(x, config, workers=workers)
