r"""WAV-folder loader for real wake-word data (Büchel et al. 2021: WAV-folder loader), feeding the same front end.

**Layouts** (``layout="auto"`` picks generic when ``positive/`` and ``negative/`` exist):

* ``"speech-commands"`` (Warden 2018): one sub-folder per word with WAV clips, an optional
  ``_background_noise_/`` folder and optional split lists ``validation_list.txt`` /
  ``testing_list.txt`` (lines ``word/file.wav``; every other clip is training). ``keyword`` is
  the wake word, or a tuple of words spoken in order as a phrase; every other word is negative.
* ``"generic"``: ``positive/`` and ``negative/`` sub-folders, optional ``noise/`` folder and the
  same optional split lists (``positive/file.wav``). ``keyword`` is ignored.

Without split lists a clip's split follows ``crc32(relative path) mod 10``: 0 → validation,
1 → test, otherwise train (stable under additions).

**Reading.** ``scipy.io.wavfile``; uint8 → ``(x − 128)/128``, int16 → ``x/2¹⁵``,
int32 → ``x/2³¹``, float32/64 as is; other sample formats, rates outside 1-384 kHz
(:data:`MIN_RATE`, :data:`MAX_RATE`), non-finite samples, unreadable or truncated files raise
:class:`~spikefleet.errors.ConfigError` naming the file. Channels are averaged to mono and the
clip is resampled to 16 kHz with ``scipy.signal.resample_poly(x, 16000/g, rate/g)``,
``g = gcd(rate, 16000)``.

**Composition of sample ``index``** (its own RNG, ``SeedSequence([crc32(LOADER_VERSION), seed,
split code, index])``; the clip order per class is a permutation seeded by ``(seed, split,
class)``): even indices are positives, odd ones negatives, so the classes are balanced by
subsampling the majority class (:func:`split_size` = 2 × the minority count; larger ``n``
re-uses clips with new onsets and noise). The clip (a phrase: its words' clips joined by
``gap_s`` of silence) is placed at onset ``~ U(onset_range)`` (moved earlier so that the end
stays ≤ ``t_end_max`` when possible) in a zero 5 s window and cropped to it. Noise: a random
5 s excerpt (tiled if shorter) of a random noise file, scaled to ``snr_db`` over the clip's
interval (no noise folder → no noise, SNR recorded as ``inf``). The mixture is scaled to RMS
``level_rms``. ``t_end`` = end of the last 10 ms frame whose energy is within 20 dB of the
peak frame; positives get the Büchel et al. 2021: target signal for substitute data target at ``t_end``.
"""

from __future__ import annotations

import math
import os
import warnings
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from spikefleet.errors import ConfigError, expect, is_finite_number
from spikefleet.tasks.wakephrase.filterbank import LEVEL_RMS, FilterbankConfig, front_end, normalize_level
from spikefleet.tasks.wakephrase.datasets import WakePhraseBatch
from spikefleet.tasks.wakephrase.corpus import SPLITS, T_STEPS, Corpus, target_bump
from spikefleet.io import read_text

__all__ = ["LOADER_VERSION", "WavFolderConfig", "read_wav", "index_folder", "split_size", "load", "generate",
           "estimate_end"]

LOADER_VERSION = "wakephrase-wav/1"
FS, N_SAMPLES = 16000, 80000
#: accepted sample rates (Hz): resampling a clip with an absurd rate (a damaged header) would need a
#: polyphase filter of ~10·rate taps, i.e. gigabytes of memory
MIN_RATE, MAX_RATE = 1000, 384000
NOISE_DIRS = {"speech-commands": "_background_noise_", "generic": "noise"}
FRAME = 160  # 10 ms energy frames for t_end


@dataclass(frozen=True)
class WavFolderConfig:
    """Where the WAV data are and how samples are composed (module docstring; times in s)."""

    root: str
    keyword: str | tuple = ""
    layout: str = "auto"
    snr_db: float = 10.0
    onset_range: tuple = (0.3, 2.0)
    t_end_max: float = 3.0
    gap_s: float = 0.05
    level_rms: float = LEVEL_RMS
    filterbank: FilterbankConfig = field(default_factory=FilterbankConfig)

    def __post_init__(self):
        expect(isinstance(self.root, (str, os.PathLike)) and str(self.root) != "", "WavFolderConfig.root",
               "a folder path", self.root)
        expect(self.layout in ("auto", "speech-commands", "generic"), "WavFolderConfig.layout",
               "'auto', 'speech-commands' or 'generic'", self.layout)
        words = self.words
        expect(all(isinstance(w, str) for w in words), "WavFolderConfig.keyword", "a word or a tuple of words",
               self.keyword)
        expect(is_finite_number(self.snr_db), "WavFolderConfig.snr_db", "a finite SNR in dB", self.snr_db)
        ok = (isinstance(self.onset_range, tuple) and len(self.onset_range) == 2
              and all(is_finite_number(v) for v in self.onset_range) and 0 <= self.onset_range[0]
              <= self.onset_range[1] < 5.0)
        expect(ok, "WavFolderConfig.onset_range", "(low, high) seconds within [0, 5)", self.onset_range)
        expect(is_finite_number(self.gap_s) and 0 <= self.gap_s < 1, "WavFolderConfig.gap_s", "a gap in [0, 1) s",
               self.gap_s)

    @property
    def words(self) -> tuple:
        return (self.keyword,) if isinstance(self.keyword, str) else tuple(self.keyword)


def read_wav(path) -> np.ndarray:
    """Mono float64 waveform of ``path`` at 16 kHz (module docstring); ConfigError naming the file."""
    path = Path(path)
    expect(path.is_file(), "WAV file", "an existing file", str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except wavfile.WavFileWarning as err:
        raise ConfigError(f"WAV file {path}: expected a complete WAV file, got a truncated one ({err})") from None
    except Exception as err:  # noqa: BLE001 - scipy raises ValueError, struct.error, EOFError, OSError...
        raise ConfigError(f"WAV file {path}: expected a readable WAV file, got {type(err).__name__}: {err}") from None
    scale = {np.dtype(np.uint8): 128.0, np.dtype(np.int16): 2.0 ** 15, np.dtype(np.int32): 2.0 ** 31}
    if data.dtype in scale:
        x = data.astype(np.float64)
        x = (x - 128.0) / 128.0 if data.dtype == np.uint8 else x / scale[data.dtype]
    elif data.dtype in (np.float32, np.float64):
        x = data.astype(np.float64)
    else:
        raise ConfigError(f"WAV file {path}: expected uint8, int16, int32, float32 or float64 samples, "
                          f"got {data.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0 or not np.all(np.isfinite(x)) or not MIN_RATE <= rate <= MAX_RATE:
        raise ConfigError(f"WAV file {path}: expected a non-empty clip of finite samples at {MIN_RATE}-{MAX_RATE} Hz, "
                          f"got {x.size} samples at {rate} Hz" + ("" if MIN_RATE <= rate <= MAX_RATE else
                          " (a corrupted header? resample the clip to 16 kHz)"))
    if rate != FS:
        g = math.gcd(int(rate), FS)
        x = resample_poly(x, FS // g, int(rate) // g)
    return x


def _wavs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(".wav"))


def _read_list(root: Path, name: str) -> set:

    path = root / name
    if not path.is_file():
        return set()
    text = read_text(path, "split list (lines 'class/file.wav')")
    return {line.strip().replace("\\", "/") for line in text.splitlines() if line.strip()}


@lru_cache(maxsize=8)
def _index(root: str, layout: str, stamp: tuple) -> dict:
    rootp = Path(root)
    if layout == "auto":
        layout = "generic" if (rootp / "positive").is_dir() and (rootp / "negative").is_dir() else "speech-commands"
    if layout == "generic":
        classes = ["positive", "negative"]
        for c in classes:
            expect((rootp / c).is_dir(), "WAV folder", f"a '{c}/' sub-folder in {root} (generic layout)", "none")
    else:
        classes = sorted(e.name for e in os.scandir(rootp) if e.is_dir() and not e.name.startswith(("_", ".")))
    val, test = _read_list(rootp, "validation_list.txt"), _read_list(rootp, "testing_list.txt")
    lists = bool(val or test)
    files = {s: {} for s in SPLITS}
    for c in classes:
        for name in _wavs(rootp / c):
            rel = f"{c}/{name}"
            if lists:
                split = "validation" if rel in val else "test" if rel in test else "train"
            else:
                h = zlib.crc32(rel.encode()) % 10
                split = "validation" if h == 0 else "test" if h == 1 else "train"
            files[split].setdefault(c, []).append(rel)
    noise_dir = rootp / NOISE_DIRS[layout]
    noise = [f"{NOISE_DIRS[layout]}/{n}" for n in _wavs(noise_dir)] if noise_dir.is_dir() else []
    return {"layout": layout, "classes": classes, "files": files, "noise": noise}


def index_folder(config: WavFolderConfig) -> dict:
    """``{"layout", "classes", "files": {split: {class: [relative paths]}}, "noise": [...]}``.

    Cached per folder until the folder or one of its sub-folders changes (modification times).
    """
    root = Path(config.root)
    expect(root.is_dir(), "WavFolderConfig.root", "an existing folder", str(root))
    stamp = (root.stat().st_mtime_ns,) + tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(root)
                                                      if e.is_dir()))
    return _index(str(root.resolve()), config.layout, stamp)


def _pools(config: WavFolderConfig, split: str) -> tuple[list[list[str]], list[str], dict]:
    """Positive pools (one per phrase word) and the negative pool of ``split``."""
    expect(split in SPLITS, "split", f"one of {sorted(SPLITS)}", split)
    idx = index_folder(config)
    files = idx["files"][split]
    if idx["layout"] == "generic":
        pos, neg = [files.get("positive", [])], files.get("negative", [])
    else:
        words = config.words
        for w in words:
            expect(w in idx["classes"], "keyword", f"a word folder of {config.root} (one of {idx['classes']})", w)
        pos = [files.get(w, []) for w in words]
        neg = [f for c in idx["classes"] if c not in words for f in files.get(c, [])]
    empty = [name for name, pool in (("positive", min(pos, key=len)), ("negative", neg)) if not pool]
    if empty:
        raise ConfigError(f"WAV folder {config.root}: expected {' and '.join(empty)} clips in the {split!r} split, "
                          f"got none")
    return pos, neg, idx


def split_size(config: WavFolderConfig, split: str) -> int:
    """Size of the balanced split: 2 × the smaller class's count."""
    pos, neg, _ = _pools(config, split)
    return 2 * min(min(len(p) for p in pos), len(neg))


def estimate_end(speech: np.ndarray) -> float:
    """End (s) of the last 10 ms frame whose energy is within 20 dB of the peak frame (0 if silent)."""
    frames = speech[: speech.size // FRAME * FRAME].reshape(-1, FRAME)
    energy = np.mean(frames ** 2, axis=1)
    if energy.max() <= 0:
        return 0.0
    return float((np.flatnonzero(energy >= energy.max() * 1e-2)[-1] + 1) * FRAME / FS)


def _perm(seed: int, split: str, k: int, size: int) -> np.ndarray:
    key = np.random.SeedSequence([zlib.crc32(LOADER_VERSION.encode()), seed, SPLITS[split], 1000 + k])
    return np.random.default_rng(key).permutation(size)


def load(config: WavFolderConfig, split: str = "train", n: int | None = None, seed: int = 0) -> Corpus:
    """Samples ``0 … n−1`` (default: the whole balanced split) of ``split`` as a :class:`Corpus`."""
    expect(isinstance(config, WavFolderConfig), "config", "a WavFolderConfig", type(config).__name__)
    pos, neg, idx = _pools(config, split)
    n = split_size(config, split) if n is None else n
    expect(isinstance(n, int) and n > 0, "n", "a positive integer", n)
    expect(isinstance(seed, int) and seed >= 0, "seed", "a non-negative integer", seed)
    perms = [_perm(seed, split, k, len(p)) for k, p in enumerate(pos + [neg])]
    root = Path(config.root)
    waves = np.empty((n, N_SAMPLES), np.float32)
    targets = np.zeros((n, T_STEPS), np.float32)
    labels, meta = np.empty(n, np.int32), []
    t_grid = np.arange(T_STEPS) * config.filterbank.dt
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence(
            [zlib.crc32(LOADER_VERSION.encode()), seed, SPLITS[split], i]))
        label, k = int(i % 2 == 0), i // 2
        clips = [pool[perm[k % len(pool)]] for pool, perm in zip(pos, perms)] if label else \
            [neg[perms[-1][(k * len(pos) + j) % len(neg)]] for j in range(len(pos))]
        gap = np.zeros(int(round(config.gap_s * FS)))
        parts = [read_wav(root / c) for c in clips]
        clip = np.concatenate([x for p in parts for x in (p, gap)][:-1])[:N_SAMPLES]
        dur = clip.size / FS
        onset = float(rng.uniform(*config.onset_range))
        onset = max(0.0, min(onset, config.t_end_max - dur))
        a = int(round(onset * FS))
        b = min(N_SAMPLES, a + clip.size)
        speech = np.zeros(N_SAMPLES)
        speech[a:b] = clip[: b - a]
        noise, noise_file, snr = np.zeros(N_SAMPLES), None, math.inf
        ps = float(np.mean(speech[a:b] ** 2))
        if idx["noise"] and ps > 0:
            noise_file = idx["noise"][int(rng.integers(len(idx["noise"])))]
            src = read_wav(root / noise_file)
            src = np.tile(src, N_SAMPLES // src.size + 2)
            shift = int(rng.integers(0, src.size - N_SAMPLES))
            noise = src[shift:shift + N_SAMPLES]
            pn = float(np.mean(noise[a:b] ** 2))
            if pn > 0:
                noise = noise * math.sqrt(ps / (pn * 10 ** (config.snr_db / 10)))
                snr = 10 * math.log10(ps / np.mean(noise[a:b] ** 2))
            else:
                noise = np.zeros(N_SAMPLES)
        t_end = estimate_end(speech)
        waves[i] = normalize_level(speech + noise, config.level_rms).astype(np.float32)
        labels[i] = label
        if label:
            targets[i] = target_bump(t_grid - t_end)
        meta.append({"version": LOADER_VERSION, "seed": seed, "split": split, "index": i, "label": label,
                     "files": clips, "onset_s": onset, "offset_s": t_end, "snr_db": snr, "noise_file": noise_file,
                     "syllables": list(config.words) if label else [c.split("/")[0] for c in clips]})
    return Corpus(waves, labels, targets, tuple(meta))


def generate(config: WavFolderConfig, split: str = "train", n: int | None = None, seed: int = 0) -> WakePhraseBatch:
    """:func:`load` followed by the front end: inputs ``[n, 5000, 16]``, targets ``[n, 5000, 1]``."""
    corpus = load(config, split, n, seed)
    inputs = front_end(corpus.waveforms, config.filterbank, rms=config.level_rms)
    return WakePhraseBatch(inputs, corpus.targets[..., None], corpus.labels, corpus.meta)
