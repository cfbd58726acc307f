r"""Speech-like synthesis for the synthetic wake-phrase corpus (Büchel et al. 2021: synthetic generator: requirements); used by :mod:`.wakephrase`.

Everything here is NumPy float64 at ``FS = 16 kHz`` over a ``5 s`` window (``S = 80 000`` samples).

**Syllables.** A syllable is onset consonants + a vowel (or diphthong) + coda consonants
(:data:`INVENTORY`, 18 syllables). Each part is a list of *segments*: duration, voicing
amplitude ``a_v``, frication amplitude ``a_n``, frication centre/width ``(f_c, b_c)`` in Hz,
an aspiration flag, and formant targets ``F1–F3`` (start and end, Hz; ``None`` = those of the
neighbouring vowel). Stops are closure + burst (+ aspiration if voiceless) with an F2 locus, so
formants glide into the vowel; fricatives are shaped noise up to ≈ 8 kHz (``s``: 6 kHz).

**Speaker** (per voice): ``F0`` log-uniform in ``f0_range`` with a declining, accented, smooth
contour; vocal-tract factor ``α`` scaling every formant (``1 ± vtl_range``); duration factor
``ρ`` (``1 ± rate_range``); level ``±level_db`` (it cancels after the fixed-SNR mix and the
fixed-RMS normalisation; per-word offsets ``±word_level_db`` remain). Per syllable: durations
``× (1 ± dur_jitter)`` and formants ``× (1 + formant_jitter · N(0,1))`` (token variability).

**Rendering** (vectorised over voices). Frame tracks on the grid ``t_f = (64 f − 64)/FS``
(hop 4 ms) are built from the segments and smoothed with Gaussians (formants σ = 20 ms,
amplitudes σ = 4 ms, F0 σ = 30 ms). Sources: a naive sawtooth ``2 frac(Φ) − 1`` with
``Φ(t) = φ₀ + Σ F0/FS`` (harmonics ``∝ 1/k``) and white noise. Both are windowed (periodic
Hann, 256 points, hop 64), multiplied per frame by

    H_v(f) = a_v · Π_{i=1..3} F_i² / sqrt((F_i² − f²)² + (B_i f)²) / sqrt(P_v),
    H_n(f) = a_n · [(1 − asp) G(f) + asp H_formant(f)] / sqrt(mean_f |·|²),
    G(f) = exp(−(f − f_c)² / (2 b_c²)),

(``P_v ≈ Σ_f |H|² · 2F0/(π² f²) Δf`` is the power of the sawtooth through the resonators, so
``a_v`` and ``a_n`` are RMS amplitudes), inverse-transformed and overlap-added (÷ 1.5).
Bandwidths ``B = (80, 100, 150) Hz`` (``×1.6`` for nasals).

**Noise families** (``NOISE_FAMILIES``): pink (``|N(f)| ∝ f^{-1/2}``), brown (``∝ f^{-1}``),
both floored at 50 Hz; ``modulated`` — pink noise times ``clip(1 + Σ_j a_j sin(2π f_j t + φ_j),
0.05)`` with ``f_j`` in 0.3–4 Hz (non-stationary); ``babble`` — 4–6 talkers of random syllable
streams (never containing the wake phrase) over the whole window: 2 rendered streams, each
also used circularly shifted (by 0.5–4.5 s), every talker at ±3 dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

__all__ = ["FS", "DURATION", "N_SAMPLES", "VOWELS", "INVENTORY", "WAKE", "NEAR", "NOISE_FAMILIES", "Speaker",
           "draw_speaker", "syllable_token", "word_tokens", "contains", "random_word", "voice_tracks",
           "render_voices", "shaped_noise", "modulation", "babble_words", "babble_copies", "babble_mix",
           "HARD_KINDS", "plan_sample", "render_mix"]

FS = 16000
#: length of a sample (s)
DURATION = 5.0
#: audio samples per sample (``FS · DURATION``)
N_SAMPLES = 80000
NFFT, HOP = 256, 64
PAD = NFFT - HOP
N_FRAMES = (N_SAMPLES + 2 * PAD - NFFT) // HOP + 1
FREQS = np.fft.rfftfreq(NFFT, 1.0 / FS)
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(NFFT) / NFFT)  # periodic Hann; Σ w² over hops = 1.5
NOISE_FAMILIES = ("pink", "brown", "modulated", "babble")
_BW = np.array([80.0, 100.0, 150.0])

#: Vowel formant targets F1–F3 in Hz (adult male averages; scaled by the speaker's α).
VOWELS = {
    "i": (270, 2290, 3010), "I": (390, 1990, 2550), "e": (530, 1840, 2480), "ae": (660, 1720, 2410),
    "a": (730, 1090, 2440), "o": (570, 840, 2410), "u": (300, 870, 2240), "U": (440, 1020, 2240),
}
_DIPHTHONGS = {"ei": ("e", "i"), "ai": ("a", "i"), "ou": ("o", "u")}


def _seg(dur, voice=0.0, fric=0.0, fc=4000.0, bw=2000.0, asp=0.0, formants=None, nasal=False):
    return dict(dur=dur * 1e-3, voice=voice, fric=fric, fc=fc, bw=bw, asp=asp, start=formants, end=formants,
                nasal=nasal)


def _stop(voiced: bool, fc: float, bw: float, locus: float) -> list[dict]:
    closed = (250, locus, None)
    segs = [_seg(50, 0.05 if voiced else 0.0, formants=closed),
            _seg(10 if voiced else 12, 0.05 if voiced else 0.0, 0.3 if voiced else 0.5, fc, bw, formants=closed)]
    if not voiced:
        segs.append(_seg(35, 0.0, 0.15, fc, bw, asp=1.0))
    return segs


#: Consonant recipes: segment lists (durations in ms before speaker/token scaling).
CONSONANTS = {
    "p": _stop(False, 1000, 1500, 900), "b": _stop(True, 1000, 1500, 900),
    "t": _stop(False, 4500, 2000, 1800), "d": _stop(True, 4000, 2000, 1800),
    "k": _stop(False, 2300, 800, 2300), "g": _stop(True, 2200, 800, 2300),
    "s": [_seg(90, 0.0, 0.35, 6000, 1800)], "sh": [_seg(100, 0.0, 0.4, 3000, 900)],
    "f": [_seg(100, 0.0, 0.12, 5000, 3500)], "h": [_seg(70, 0.0, 0.15, asp=1.0)],
    "m": [_seg(70, 0.35, formants=(250, 1000, 2200), nasal=True)],
    "n": [_seg(70, 0.35, formants=(250, 1500, 2500), nasal=True)],
    "l": [_seg(60, 0.6, formants=(350, 1100, 2700))], "w": [_seg(60, 0.6, formants=(300, 700, 2200))],
    "y": [_seg(60, 0.6, formants=(280, 2200, 3000))],
}

#: Syllable inventory: name -> (onset consonants, vowel or diphthong, coda consonants).
INVENTORY = {
    "hei": (("h",), "ei", ()), "sni": (("s", "n"), "i", ()), "pus": (("p",), "u", ("s",)),
    "hai": (("h",), "ai", ()), "kei": (("k",), "ei", ()), "smi": (("s", "m"), "i", ()), "ni": (("n",), "i", ()),
    "bus": (("b",), "u", ("s",)), "pos": (("p",), "o", ("s",)), "ta": (("t",), "a", ()), "de": (("d",), "e", ()),
    "gou": (("g",), "ou", ()), "la": (("l",), "a", ()), "wI": (("w",), "I", ()), "yo": (("y",), "o", ()),
    "fae": (("f",), "ae", ()), "shu": (("sh",), "u", ()), "mat": (("m",), "a", ("t",)),
}
#: The wake phrase (3 syllables, ≈ 0.6–0.9 s).
WAKE = ("hei", "sni", "pus")
#: Acoustically close substitutes of each wake syllable (used with probability ``similarity``).
NEAR = {"hei": ("hai", "kei"), "sni": ("smi", "ni"), "pus": ("bus", "pos")}
_NAMES = tuple(INVENTORY)


@dataclass(frozen=True)
class Speaker:
    """Per-voice parameters: F0 (Hz), VTL factor α, duration factor ρ, level (dB), F0 wiggle phase."""

    f0: float
    vtl: float
    rate: float
    level_db: float
    phase: float

    def to_dict(self) -> dict:
        return {"f0_hz": self.f0, "vtl": self.vtl, "rate": self.rate, "level_db": self.level_db}


def draw_speaker(rng: np.random.Generator, cfg) -> Speaker:
    """A random speaker: F0 log-uniform in ``cfg.f0_range``; vocal-tract length, rate and level jittered uniformly; random phase."""
    lo, hi = cfg.f0_range
    return Speaker(f0=float(math.exp(rng.uniform(math.log(lo), math.log(hi)))),
                   vtl=float(1.0 + cfg.vtl_range * rng.uniform(-1, 1)),
                   rate=float(1.0 + cfg.rate_range * rng.uniform(-1, 1)),
                   level_db=float(cfg.level_db * rng.uniform(-1, 1)), phase=float(rng.uniform(0, 2 * np.pi)))


def syllable_token(name: str, rng: np.random.Generator, cfg, speaker: Speaker) -> dict:
    """One spoken token of syllable ``name``: ``{"name", "segs", "dur", "accent"}``.

    Segments carry durations in s and speaker-scaled formants in Hz; ``accent`` is the F0 factor
    ``1 + U(−0.04, 0.1)`` of the syllable.
    """
    onset, vowel, coda = INVENTORY[name]
    v0, v1 = (VOWELS[_DIPHTHONGS[vowel][0]], VOWELS[_DIPHTHONGS[vowel][1]]) if vowel in _DIPHTHONGS \
        else (VOWELS[vowel], VOWELS[vowel])
    nucleus = _seg(150 if vowel in _DIPHTHONGS else 110, 1.0)
    nucleus["start"], nucleus["end"] = v0, v1
    parts = [dict(s) for c in onset for s in CONSONANTS[c]] + [nucleus]
    parts += [dict(s) for c in coda for s in CONSONANTS[c]]
    stretch = speaker.rate * (1.0 + cfg.dur_jitter * rng.uniform(-1, 1))
    scale = speaker.vtl * (1.0 + cfg.formant_jitter * np.clip(rng.standard_normal(3), -2.5, 2.5))
    seen_vowel = False
    for seg in parts:
        seen_vowel = seen_vowel or seg is nucleus
        ref = v1 if seen_vowel else v0
        for key in ("start", "end"):
            f = seg[key] if seg[key] is not None else ref
            seg[key] = np.array([ref[i] if f[i] is None else f[i] for i in range(3)], float) * scale
        seg["dur"] *= stretch
    return {"name": name, "segs": parts, "dur": sum(s["dur"] for s in parts),
            "accent": 1.0 + float(rng.uniform(-0.04, 0.1))}


def word_tokens(syllables, rng: np.random.Generator, cfg, speaker: Speaker) -> list[dict]:
    """The spoken tokens (:func:`syllable_token`) of a word given as syllable names, by ``speaker``."""
    return [syllable_token(name, rng, cfg, speaker) for name in syllables]


def contains(sequence, phrase=WAKE) -> int:
    """How many times ``phrase`` occurs contiguously in ``sequence`` (a list of syllable names)."""
    k = len(phrase)
    return sum(tuple(sequence[i:i + k]) == tuple(phrase) for i in range(len(sequence) - k + 1))


def random_word(rng: np.random.Generator, lengths=(1, 2)) -> list[str]:
    """A random word: ``lengths[0]``..``lengths[1]`` syllable names drawn uniformly from the inventory."""
    return [_NAMES[i] for i in rng.integers(0, len(_NAMES), int(rng.integers(lengths[0], lengths[1] + 1)))]


# ------------------------------------------------------------------------------------- tracks
def _frame(t: float) -> int:
    """First frame whose centre ``(64 f − 64)/FS`` is at or after ``t`` seconds (clipped)."""
    return min(max(math.ceil((t * FS + HOP) / HOP - 1e-9), 0), N_FRAMES)


def voice_tracks(words, speaker: Speaker) -> dict:
    """Frame tracks ``{name: [N_FRAMES] or [3, N_FRAMES]}`` of one voice speaking the placed
    ``words = [(onset_s, tokens, gain)]`` (tokens from :func:`word_tokens`)."""
    f = N_FRAMES
    tr = {k: np.zeros(f) for k in ("voice", "fric", "asp", "nasal")}
    tr["fc"], tr["bw"] = np.full(f, 4000.0), np.full(f, 2000.0)
    tr["F"] = np.tile((np.array([500.0, 1500.0, 2500.0]) * speaker.vtl)[:, None], (1, f))
    accent = np.ones(f)
    for onset, tokens, gain in words:
        t = onset
        for token in tokens:
            t_syl = t
            for seg in token["segs"]:
                a, b = _frame(t), _frame(t + seg["dur"])
                if b > a:
                    tr["voice"][a:b], tr["fric"][a:b] = seg["voice"] * gain, seg["fric"] * gain
                    tr["asp"][a:b], tr["fc"][a:b], tr["bw"][a:b] = seg["asp"], seg["fc"], seg["bw"]
                    tr["nasal"][a:b] = float(seg["nasal"])
                    w = np.linspace(0.0, 1.0, b - a)
                    tr["F"][:, a:b] = seg["start"][:, None] * (1 - w) + seg["end"][:, None] * w
                t += seg["dur"]
            accent[_frame(t_syl):_frame(t)] = token["accent"]
        a, b = _frame(onset), _frame(t)
        if b > a:
            accent[a:b] *= np.linspace(1.06, 0.94, b - a)
    times = (np.arange(f) * HOP - HOP) / FS
    f0 = speaker.f0 * accent * (1.0 + 0.02 * np.sin(2 * np.pi * 3.0 * times + speaker.phase))
    tr["f0"] = np.clip(gaussian_filter1d(f0, 7.5), 70.0, 300.0)
    tr["F"] = gaussian_filter1d(tr["F"], 5.0, axis=-1)
    for k in ("voice", "fric", "asp"):
        tr[k] = gaussian_filter1d(tr[k], 1.0)
    return tr


# ------------------------------------------------------------------------------------ render
def _frames(x: np.ndarray, vi: np.ndarray, fi: np.ndarray) -> np.ndarray:
    """Windowed spectra ``[P, K]`` of frames ``fi`` of signals ``x[vi]`` (``x`` is ``[V, S]``)."""
    padded = np.pad(x, ((0, 0), (PAD, PAD)))
    view = np.lib.stride_tricks.sliding_window_view(padded, NFFT, axis=-1)[:, ::HOP]
    return np.fft.rfft(view[vi, fi] * _WINDOW, axis=-1)


def render_voices(tracks: list[dict], noises: np.ndarray) -> np.ndarray:
    """Waveforms ``[V, S]`` of voices with frame ``tracks`` and white-noise sources ``noises [V, S]``.

    Only frames where the voice is audible (``a_v + a_n > 1e-4``, widened by 2 frames) are
    transformed; the others are exactly silent.
    """
    stack = {k: np.stack([t[k] for t in tracks]) for k in tracks[0]}
    n_voices = len(tracks)
    f0 = stack["f0"]
    pos = np.arange(N_SAMPLES) + HOP
    idx, frac = pos // HOP, (pos % HOP) / HOP
    phase = np.cumsum((f0[:, idx] * (1 - frac) + f0[:, idx + 1] * frac) / FS, axis=-1)
    saw = 2.0 * (phase % 1.0) - 1.0
    active = maximum_filter1d((stack["voice"] + stack["fric"] > 1e-4).astype(np.uint8), 5, axis=-1) > 0
    vi, fi = np.nonzero(active)
    f2 = FREQS[None, :] ** 2
    h2 = np.ones((vi.size, FREQS.size))
    nasal = 1.0 + 0.6 * stack["nasal"][vi, fi][:, None]
    for i in range(3):
        fi2 = stack["F"][vi, i, fi][:, None] ** 2
        h2 *= fi2 ** 2 / ((fi2 - f2) ** 2 + (_BW[i] ** 2 * f2) * nasal ** 2)
    # Sawtooth power through the resonators: Σ_{f ≥ F0} |H|² · 2 F0 / (π² f²) · Δf.
    f0p = f0[vi, fi]
    low = FREQS[1:6]  # bins that can lie below F0 (F0 ≤ 300 Hz)
    p_voiced = h2[:, 1:] @ (1.0 / FREQS[1:] ** 2) - np.sum(h2[:, 1:6] / low ** 2 * (low < f0p[:, None]), axis=-1)
    p_voiced *= 2.0 * f0p / np.pi ** 2 * (FS / NFFT)
    h = np.sqrt(h2)
    gain = stack["voice"][vi, fi] / np.sqrt(np.maximum(p_voiced, 1e-12))
    spec = _frames(saw, vi, fi) * (h * gain[:, None])
    fric = stack["fric"][vi, fi]
    j = np.flatnonzero(fric > 1e-4)  # frames with frication
    vj, fj = vi[j], fi[j]
    g = np.exp(-0.5 * ((FREQS[None, :] - stack["fc"][vj, fj][:, None]) / stack["bw"][vj, fj][:, None]) ** 2)
    g /= np.sqrt(np.mean(g ** 2, axis=-1, keepdims=True))
    asp = stack["asp"][vj, fj][:, None]
    shape = (1 - asp) * g + asp * (h[j] / np.sqrt(np.mean(h2[j], axis=-1, keepdims=True)))
    spec[j] += _frames(noises, vj, fj) * (fric[j][:, None] * shape)
    y = (np.fft.irfft(spec, NFFT, axis=-1) * _WINDOW).reshape(vi.size, NFFT // HOP, HOP)
    out = np.zeros((n_voices, N_FRAMES + NFFT // HOP - 1, HOP))
    for q in range(NFFT // HOP):
        out[vi, fi + q] += y[:, q]  # (vi, fi + q) pairs are unique for a fixed q
    return out.reshape(n_voices, -1)[:, PAD:PAD + N_SAMPLES] / 1.5


def shaped_noise(white: np.ndarray, exponent: float) -> np.ndarray:
    """``white [n, S]`` shaped to ``|N(f)| ∝ max(f, 50 Hz)^(−exponent)`` with zero mean, unit RMS."""
    spec = np.fft.rfft(white, axis=-1)
    freqs = np.fft.rfftfreq(white.shape[-1], 1.0 / FS)
    spec *= np.maximum(freqs, 50.0) ** (-exponent)
    spec[..., 0] = 0.0
    out = np.fft.irfft(spec, white.shape[-1], axis=-1)
    return out / np.sqrt(np.mean(out ** 2, axis=-1, keepdims=True))


def modulation(rng: np.random.Generator) -> np.ndarray:
    """Slow non-negative gain ``clip(1 + Σ_j a_j sin(2π f_j t + φ_j), 0.05)`` over the window."""
    t = np.arange(N_SAMPLES) / FS
    freqs, amps, phases = rng.uniform(0.3, 4.0, 3), rng.uniform(0.2, 1.0, 3), rng.uniform(0, 2 * np.pi, 3)
    amps *= 0.9 / amps.sum()
    return np.clip(1.0 + np.sum(amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None]), 0), 0.05,
                   None)


def babble_words(rng: np.random.Generator, cfg) -> tuple[Speaker, list]:
    """One babble stream covering 0–5 s: its speaker and placed words (never the wake phrase).

    A babble of ``k`` talkers is made of 2 such streams, each summed with circularly shifted
    copies of itself (:func:`babble_mix`)."""
    speaker = draw_speaker(rng, cfg)
    words, t, seq = [], float(rng.uniform(-0.4, 0.0)), []
    while t < DURATION:
        word = random_word(rng, (1, 3))
        while contains(seq + word):
            word = random_word(rng, (1, 3))
        seq += word
        tokens = word_tokens(word, rng, cfg, speaker)
        words.append((t, tokens, 1.0))
        t += sum(tok["dur"] for tok in tokens) + float(rng.uniform(0.05, 0.2))
    return speaker, words


def babble_copies(rng: np.random.Generator) -> list[tuple[int, int, float]]:
    """``(stream, shift in samples, gain)`` of the 4–6 talkers built from 2 rendered streams."""
    talkers = int(rng.integers(4, 7))
    return [(k % 2, 0 if k < 2 else int(rng.integers(N_SAMPLES // 10, N_SAMPLES * 9 // 10)),
             float(10 ** (rng.uniform(-3, 3) / 20))) for k in range(talkers)]


def babble_mix(streams: np.ndarray, copies) -> np.ndarray:
    """Sum of the talkers ``copies`` (from :func:`babble_copies`) of ``streams [2, S]``."""
    return sum(g * np.roll(streams[k], shift) for k, shift, g in copies)


#: kinds of hard negatives, in the order of ``WakePhraseConfig.hard_mix``
HARD_KINDS = ("substitute", "permute", "partial", "insert")


# ------------------------------------------------------------------------------ samples
def _main_token(rng, label: int, cfg) -> tuple[str, list[str]]:
    wake = list(WAKE)
    if label:
        return "wake", wake
    if rng.random() >= cfg.hard_negative_share:
        while True:
            seq = random_word(rng, (2, 4))
            if not contains(seq):
                return "random", seq
    mix = np.asarray(cfg.hard_mix, float)
    kind = HARD_KINDS[int(rng.choice(4, p=mix / mix.sum()))]
    if kind == "substitute":
        i = int(rng.integers(3))
        near = rng.random() < cfg.similarity
        pool = NEAR[wake[i]] if near else [s for s in INVENTORY if s != wake[i] and s not in NEAR[wake[i]]]
        wake[i] = pool[int(rng.integers(len(pool)))]
        kind = "substitute-near" if near else "substitute-far"
    elif kind == "permute":
        perms = [(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
        wake = [wake[j] for j in perms[int(rng.integers(5))]]
    elif kind == "partial":
        wake = wake[:2] if rng.random() < 0.5 else wake[1:]
    else:
        i = int(rng.integers(1, 3))
        extra = random_word(rng, (1, 1))
        while contains(wake[:i] + extra + wake[i:]):
            extra = random_word(rng, (1, 1))
        wake = wake[:i] + extra + wake[i:]
    return kind, wake


def plan_sample(rng: np.random.Generator, label: int, cfg) -> dict:
    """Everything random about one sample (drawn from its own ``rng``), ready to render."""
    speaker = draw_speaker(rng, cfg)
    kind, main = _main_token(rng, label, cfg)
    while True:
        ctx = [random_word(rng) for _ in range(int(rng.integers(0, cfg.max_context + 1)))]
        before = rng.random(len(ctx)) < 0.5
        pre = [w for w, b in zip(ctx, before) if b]
        post = [w for w, b in zip(ctx, before) if not b]
        if contains(sum(pre, []) + main + sum(post, [])) == label:
            break
    gain = lambda: 10 ** (speaker.level_db / 20 + cfg.word_level_db * rng.uniform(-1, 1) / 20)  # noqa: E731
    main_tok = (word_tokens(main, rng, cfg, speaker), gain())
    pre_tok = [(word_tokens(w, rng, cfg, speaker), gain()) for w in pre]
    post_tok = [(word_tokens(w, rng, cfg, speaker), gain()) for w in post]
    dur = lambda toks: sum(t["dur"] for t in toks)  # noqa: E731
    onset = float(rng.uniform(*cfg.onset_range))
    onset = max(0.05, min(onset, cfg.t_end_max - dur(main_tok[0])))
    words = [(onset, main_tok[0], main_tok[1], main)]
    t = onset
    for (toks, g), syl in zip(reversed(pre_tok), reversed(pre)):
        t -= float(rng.uniform(0.1, 0.3)) + dur(toks)
        if t < 0.05:
            break
        words.insert(0, (t, toks, g, syl))
    t = onset + dur(main_tok[0])
    for (toks, g), syl in zip(post_tok, post):
        t += float(rng.uniform(0.1, 0.3))
        if t + dur(toks) > DURATION - 0.05:
            break
        words.append((t, toks, g, syl))
        t += dur(toks)
    voices = [voice_tracks([w[:3] for w in words], speaker)]
    mix = np.asarray(cfg.noise_mix, float)
    family = NOISE_FAMILIES[int(rng.choice(4, p=mix / mix.sum()))]
    babble = None
    if family == "babble":
        for _ in range(2):
            voices.append(voice_tracks(*reversed(babble_words(rng, cfg))))
        babble = babble_copies(rng)
    whites = rng.standard_normal((len(voices) + 1, N_SAMPLES))
    mod = modulation(rng) if family == "modulated" else None
    seq = [s for w in words for s in w[3]]
    span = (words[0][0], words[-1][0] + dur(words[-1][1]))
    return dict(label=label, kind=kind, speaker=speaker, words=words, voices=voices, whites=whites, family=family,
                babble=babble, modulation=mod, sequence=seq, span=span,
                main=(onset, onset + dur(main_tok[0])))


def render_mix(plans: list[dict], snr_db: float) -> tuple[np.ndarray, np.ndarray, list]:
    """Speech and noise ``[n, S]`` of ``plans``, noise scaled to ``snr_db`` over the speech span;
    also the realised SNRs (dB)."""
    tracks = [v for p in plans for v in p["voices"]]
    whites = np.concatenate([p["whites"][:-1] for p in plans])
    voices = render_voices(tracks, whites)
    speech, noise, k, snrs = [], [], 0, []
    for p in plans:
        s = voices[k]
        nv = len(p["voices"])
        if p["family"] == "babble":
            n = babble_mix(voices[k + 1:k + nv], p["babble"])
        else:
            n = shaped_noise(p["whites"][-1:], 1.0 if p["family"] == "brown" else 0.5)[0]
            if p["modulation"] is not None:
                n = n * p["modulation"]
        k += nv
        a, b = (int(round(x * FS)) for x in p["span"])
        ps, pn = np.mean(s[a:b] ** 2), np.mean(n[a:b] ** 2)
        n = n * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))
        snrs.append(float(10 * np.log10(ps / np.mean(n[a:b] ** 2))))
        speech.append(s)
        noise.append(n)
    return np.stack(speech), np.stack(noise), snrs
