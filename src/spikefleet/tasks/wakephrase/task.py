r"""Synthetic wake-phrase corpus: the Hey Snips substitute (Büchel et al. 2021: hey Snips wake-phrase detection, Büchel et al. 2021: substitute for the Hey Snips data), with its decision rules.

**Samples.** 5 s mono at 16 kHz (80 000 float32 samples), label 1 iff the wake phrase
``hei-sni-pus`` (:data:`~.wakephrase_synth.WAKE`) is spoken exactly once, the Büchel et al. 2021: target signal for substitute data target at
1 kHz, metadata, and the front-end features :func:`~.filterbank.front_end` ``[5000, 16]``.

**Determinism and splits.** Sample ``index`` of split ``split`` under global seed ``seed`` is a
pure function of ``(GENERATOR_VERSION, seed, split, index, config)``: all its random numbers
come from ``default_rng(SeedSequence([crc32(GENERATOR_VERSION), seed, SPLITS[split], index]))``
(:func:`sample_key`), never from shared state, so batch size, order and worker count do not
matter and ``synthesize(n, …)`` is a prefix of ``synthesize(m > n, …)``. Train, validation and
test use split codes 1/2/3, so their samples and speakers come from disjoint seed sequences
(a task's ``generate(n, seed)`` uses its ``split``; the recipes also pass different seeds per
stream). Even indices are positives, odd ones negatives: every even-sized batch is exactly
balanced. Synthesis is float64; the waveform is rounded to float32 at the end.

**Composition.** Main token onset ``~ U(onset_range)`` (moved earlier if its end would pass
``t_end_max = 3 s``); 0–``max_context`` extra 1–2-syllable context words before/after (pauses
0.1–0.3 s; the whole syllable sequence never contains the wake phrase in negatives and contains
it exactly once in positives). Negatives are hard with probability ``hard_negative_share``
(kinds weighted by ``hard_mix``: one syllable substituted — by a near neighbour,
:data:`~.wakephrase_synth.NEAR`, with probability ``similarity``; permuted; a 2-syllable prefix
or suffix; one extra syllable inserted inside), otherwise 2–4 random syllables. Background noise
(family drawn by ``noise_mix``) is mixed at ``snr_db`` = 10 dB, both powers measured over the
speech-active interval [first onset, last offset]; the mixture is scaled to RMS
``LEVEL_RMS``.

**Target** (Büchel et al. 2021: target signal for substitute data). ``y = 0`` for negatives; for positives ``y(t) = bump(t − t_end)``, the
monotone cubic (PCHIP) interpolation of (0, 0), (0.45, 1), (0.95, 0.51), (1.35, 0.16),
(1.75, 0.045), (2.0, 0) (zero slope at both ends), 0 outside [0, 2] s.

**Difficulty knobs** (:class:`WakePhraseConfig`): ``hard_negative_share``, ``hard_mix``,
``similarity``, speaker ranges (``f0_range``, ``vtl_range``, ``rate_range``, ``level_db``,
``word_level_db``), token variability (``dur_jitter``, ``formant_jitter``), ``max_context`` and
``noise_mix``. SNR stays at 10 dB. The preset ``"default"`` (alias ``"heysnips-like-v1"``) is the
calibrated one (see :data:`PRESETS` and :func:`spikefleet.studies.wakephrase_calibration.calibrate_teacher`).

**Decision rules** (Büchel et al. 2021: inference, decision rules, output gain). Teacher: positive iff ``max_t ŷ(t) > 0.7``. Integral rule: smooth
``y′(0) = ỹ(0)``, ``y′(t) = 0.95 y′(t−1) + 0.05 ỹ(t)``; zero the values below ``θ₀ = 0.5``;
``s(t) = s(t−1) + y′(t)`` inside a run of kept values, ``s = 0`` after each zeroed one (units:
sum over 1 ms samples); positive iff ``max_t s(t) > B``. ``B`` starts at 200 and is fitted on
validation data among 1000 equally spaced values between the smallest and largest per-sample
integral (most accurate; ties → the larger ``B``).
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import jax
import jax.numpy as jnp

from spikefleet.errors import ConfigError, expect, is_finite_number
from spikefleet.simulation import run_outputs
from spikefleet.tasks.base import Task
from spikefleet.tasks.wakephrase import synth as syn
from spikefleet.tasks.wakephrase import wav
from spikefleet.tasks.wakephrase.corpus import SPLITS, T_STEPS, Corpus, target_bump
from spikefleet.tasks.wakephrase.datasets import FixedSets, WakePhraseBatch, dataset
from spikefleet.tasks.wakephrase.filterbank import LEVEL_RMS, FilterbankConfig, front_end, normalize_level
from spikefleet.tasks.xor import smooth_output

__all__ = ["GENERATOR_VERSION", "SPLITS", "DEFAULT_SIZES", "PRESETS", "RULES", "WakePhraseConfig", "Corpus",
           "preset", "sample_key", "synthesize", "generate", "target_bump", "integrals", "decide",
           "decide_jax", "fit_boundary", "decide_teacher", "decide_teacher_jax", "accuracy", "WakePhraseTask",
]

GENERATOR_VERSION = "wakephrase-synth/1"
#: Default split sizes (Büchel et al. 2021: synthetic generator: requirements item 11): validation and test as in the paper (test 500 for mismatch).
DEFAULT_SIZES = {"train": 4000, "validation": 500, "test": 1000, "test-mismatch": 500}
THETA0, SMOOTH = 0.5, 0.95
TEACHER_THRESHOLD = 0.7
INITIAL_BOUNDARY = 200.0
#: decision rules of :class:`WakePhraseTask`
RULES = ("teacher", "integral", "integral-fit")
N_CANDIDATES = 1000


def _pair(x, lo=0.0, hi=np.inf) -> bool:
    return (isinstance(x, tuple) and len(x) == 2 and all(is_finite_number(v) for v in x)
            and lo <= x[0] <= x[1] <= hi)


def _weights(x, n) -> bool:
    return (isinstance(x, tuple) and len(x) == n and all(is_finite_number(v) and v >= 0 for v in x)
            and sum(x) > 0)


@dataclass(frozen=True)
class WakePhraseConfig:
    """Generator knobs (module docstring). Ranges are ± fractions unless marked; times in s."""

    hard_negative_share: float = 0.35
    hard_mix: tuple = (0.4, 0.2, 0.2, 0.2)  # substitute, permute, partial, insert
    similarity: float = 0.5
    f0_range: tuple = (90.0, 230.0)  # Hz, log-uniform speaker base F0
    vtl_range: float = 0.15
    rate_range: float = 0.2
    level_db: float = 6.0
    word_level_db: float = 3.0
    dur_jitter: float = 0.1
    formant_jitter: float = 0.05
    max_context: int = 2
    onset_range: tuple = (0.3, 2.0)
    t_end_max: float = 3.0
    noise_mix: tuple = (0.25, 0.25, 0.25, 0.25)  # pink, brown, modulated, babble
    snr_db: float = 10.0
    level_rms: float = LEVEL_RMS
    filterbank: FilterbankConfig = field(default_factory=FilterbankConfig)

    def __post_init__(self):
        for name in ("hard_negative_share", "similarity", "vtl_range", "rate_range", "dur_jitter"):
            v = getattr(self, name)
            expect(is_finite_number(v) and 0 <= v <= (1 if name in ("hard_negative_share", "similarity") else 0.5),
                   f"WakePhraseConfig.{name}", "a fraction in [0, 1] (ranges at most 0.5)", v)
        for name in ("level_db", "word_level_db", "formant_jitter"):
            v = getattr(self, name)
            expect(is_finite_number(v) and v >= 0, f"WakePhraseConfig.{name}", "a non-negative number", v)
        expect(_weights(self.hard_mix, 4), "WakePhraseConfig.hard_mix", "4 non-negative weights", self.hard_mix)
        expect(_weights(self.noise_mix, 4), "WakePhraseConfig.noise_mix", "4 non-negative weights", self.noise_mix)
        expect(_pair(self.f0_range, 50.0, 400.0), "WakePhraseConfig.f0_range", "(low, high) Hz in [50, 400]",
               self.f0_range)
        expect(_pair(self.onset_range, 0.0, 4.0), "WakePhraseConfig.onset_range", "(low, high) s in [0, 4]",
               self.onset_range)
        expect(is_finite_number(self.t_end_max) and 1.0 <= self.t_end_max <= 3.0, "WakePhraseConfig.t_end_max",
               "a time in [1, 3] s (the 2 s target must fit in the 5 s window)", self.t_end_max)
        expect(isinstance(self.max_context, int) and 0 <= self.max_context <= 2, "WakePhraseConfig.max_context",
               "0, 1 or 2", self.max_context)
        expect(is_finite_number(self.snr_db), "WakePhraseConfig.snr_db", "a finite SNR in dB", self.snr_db)
        expect(is_finite_number(self.level_rms) and self.level_rms > 0, "WakePhraseConfig.level_rms",
               "a positive RMS", self.level_rms)


#: Named presets. "default" = "heysnips-like-v1": the calibrated difficulty (teacher ≈ 0.90).
PRESETS = {
    "default": WakePhraseConfig(),
    "easy": WakePhraseConfig(hard_negative_share=0.0, similarity=0.0, vtl_range=0.05, rate_range=0.05,
                             formant_jitter=0.0, noise_mix=(1.0, 1.0, 0.0, 0.0)),
}
PRESETS["heysnips-like-v1"] = PRESETS["default"]


def preset(name: str) -> WakePhraseConfig:
    """The :class:`WakePhraseConfig` of preset ``name`` (a key of :data:`PRESETS`)."""
    expect(name in PRESETS, "preset", f"one of {sorted(PRESETS)}", name)
    return PRESETS[name]


def sample_key(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The per-sample seed sequence ``SeedSequence([crc32(version), seed, split code, index])``."""
    return np.random.SeedSequence([zlib.crc32(GENERATOR_VERSION.encode()), seed, SPLITS[split], index])


# ---------------------------------------------------------------------------------- synthesis
def _chunk(seed: int, split: str, idx: range, cfg) -> tuple:
    plans = [syn.plan_sample(np.random.default_rng(sample_key(seed, split, i)), int(i % 2 == 0), cfg) for i in idx]
    speech, noise, snrs = syn.render_mix(plans, cfg.snr_db)
    waves = normalize_level(speech + noise, cfg.level_rms).astype(np.float32)
    t_grid = np.arange(T_STEPS) * cfg.filterbank.dt
    targets = np.stack([target_bump(t_grid - p["main"][1]) if p["label"] else np.zeros(T_STEPS) for p in plans])
    meta = [{
        "version": GENERATOR_VERSION, "seed": seed, "split": split, "index": i, "label": p["label"],
        "kind": p["kind"], "onset_s": p["main"][0] if p["label"] else None,
        "offset_s": p["main"][1] if p["label"] else None, "token_s": p["main"], "snr_db": snr,
        "noise_family": p["family"], "syllables": p["sequence"],
        "words": [(w[0], w[0] + sum(t["dur"] for t in w[1]), list(w[3])) for w in p["words"]],
        "speaker": p["speaker"].to_dict(), "speech_span_s": p["span"]} for i, p, snr in zip(idx, plans, snrs)]
    return waves, np.array([p["label"] for p in plans], np.int32), targets.astype(np.float32), meta, speech, noise


def synthesize(n: int, seed: int = 0, split: str = "train", config: WakePhraseConfig | str = "default", *,
               start: int = 0, chunk: int = 16, workers: int | None = None, components: bool = False):
    """Samples ``start … start+n−1`` of ``split`` under ``seed`` as a :class:`Corpus`.

    Chunks of ``chunk`` samples are synthesised by ``workers`` threads (default
    ``min(2, cpu count)``); neither changes the result. With ``components=True`` also returns
    the scaled ``(speech, noise)`` float64 ``[n, S]`` (the waveform is ``(speech + noise)·c``
    with one level-normalisation factor ``c`` per sample).
    """
    cfg = preset(config) if isinstance(config, str) else config
    expect(isinstance(cfg, WakePhraseConfig), "config", "a WakePhraseConfig or preset name", config)
    expect(isinstance(n, int) and n > 0, "n", "a positive integer", n)
    expect(isinstance(seed, int) and seed >= 0, "seed", "a non-negative integer", seed)
    expect(isinstance(start, int) and start >= 0, "start", "a non-negative integer", start)
    expect(split in SPLITS, "split", f"one of {sorted(SPLITS)}", split)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    ranges = [range(start + lo, start + min(n, lo + chunk)) for lo in range(0, n, chunk)]
    if workers > 1 and len(ranges) > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda r: _chunk(seed, split, r, cfg), ranges))
    else:
        parts = [_chunk(seed, split, r, cfg) for r in ranges]
    cat = lambda i: np.concatenate([p[i] for p in parts])  # noqa: E731
    corpus = Corpus(cat(0), cat(1), cat(2), tuple(m for p in parts for m in p[3]))
    return (corpus, (cat(4), cat(5))) if components else corpus


def generate(n: int, seed: int = 0, split: str = "train", config: WakePhraseConfig | str = "default", *,
             start: int = 0) -> WakePhraseBatch:
    """:func:`synthesize` followed by the front end: a training-ready batch."""
    cfg = preset(config) if isinstance(config, str) else config
    corpus = synthesize(n, seed, split, cfg, start=start)
    inputs = front_end(corpus.waveforms, cfg.filterbank, rms=cfg.level_rms)
    return WakePhraseBatch(inputs, corpus.targets[..., None], corpus.labels, corpus.meta)


# ---------------------------------------------------------------------------- decision rules
def _squeeze(y) -> np.ndarray:
    y = np.asarray(y, np.float64)
    if y.ndim == 3 or (y.ndim == 2 and y.shape[-1] == 1):
        y = y[..., 0]
    return np.atleast_2d(y)


def integrals(y) -> np.ndarray:
    """Per-sample maximum run integral ``max_t s(t)`` (module docstring) of outputs ``[n, T(, 1)]``."""
    s = smooth_output(_squeeze(y))
    kept = s >= THETA0
    cs = np.cumsum(np.where(kept, s, 0.0), axis=-1)
    base = np.maximum.accumulate(np.where(kept, 0.0, cs), axis=-1)
    return np.max(cs - base, axis=-1)


def decide(y, boundary: float = INITIAL_BOUNDARY) -> np.ndarray:
    """Integral rule: 1 iff the maximum run integral exceeds ``boundary``. int32 ``[n]``."""
    return (integrals(y) > boundary).astype(np.int32)


def fit_boundary(y, labels) -> float:
    """Boundary ``B`` maximising accuracy on ``(y, labels)`` among 1000 candidates (ties → larger)."""
    values = integrals(y)
    labels = np.asarray(labels).reshape(-1)
    expect(labels.shape == values.shape, "labels", f"shape {values.shape}", labels.shape)
    cand = np.linspace(values.min(), values.max(), N_CANDIDATES)
    acc = np.mean((values[None, :] > cand[:, None]) == (labels[None, :] == 1), axis=1)
    return float(cand[len(cand) - 1 - int(np.argmax(acc[::-1]))])


def decide_jax(y, boundary: float = INITIAL_BOUNDARY):
    """:func:`decide` in JAX for ``[..., T, 1]`` outputs (``lax.scan`` over time); int32 ``[...]``."""

    y = jnp.moveaxis(y[..., 0], -1, 0)

    def body(carry, y_t):
        prev, run, best = carry
        s = SMOOTH * prev + (1.0 - SMOOTH) * y_t
        run = jnp.where(s >= THETA0, run + s, 0.0)
        return (s, run, jnp.maximum(best, run)), None

    run0 = jnp.where(y[0] >= THETA0, y[0], 0.0)
    (_, _, best), _ = jax.lax.scan(body, (y[0], run0, run0), y[1:])
    return (best > boundary).astype(jnp.int32)


def decide_teacher(y, threshold: float = TEACHER_THRESHOLD) -> np.ndarray:
    """Teacher rule: 1 iff ``max_t ŷ(t) > 0.7`` (unsmoothed). int32 ``[n]``."""
    return (np.max(_squeeze(y), axis=-1) > threshold).astype(np.int32)


def decide_teacher_jax(y, threshold: float = TEACHER_THRESHOLD):
    """:func:`decide_teacher` in JAX (jit/vmap-able): 1 iff ``max_t ŷ(t) > threshold``, int32."""

    return (jnp.max(y[..., 0], axis=-1) > threshold).astype(jnp.int32)


def accuracy(y, labels, boundary: float | None = None) -> float:
    """Accuracy of the integral rule (``boundary`` given) or of the teacher rule (``None``)."""
    pred = decide_teacher(y) if boundary is None else decide(y, boundary)
    return float(np.mean(pred == np.asarray(labels).reshape(-1)))


# ---------------------------------------------------------------------------------------- task
@dataclass(frozen=True)
class WakePhraseTask(Task):
    """Wake-phrase detection task (``n_in = 16``, ``n_out = 1``, dt = 1 ms).

    ``source``: ``"synthetic"`` or a WAV folder path (:mod:`.wav`; ``keyword`` names the wake
    word in the Speech Commands layout). ``split`` selects the split ``generate`` draws from. ``rule``: ``"teacher"``
    (max ŷ > 0.7), ``"integral"`` with ``boundary`` (fit it with :meth:`with_boundary`) or
    ``"integral-fit"``: :meth:`accuracy` fits the boundary on the very outputs and labels it
    judges (the validation score of model selection for a design whose boundary is fitted on the
    same validation set afterwards); it has no label-free :meth:`decide`.
    ``n_train`` / ``n_validation``: sizes of the fixed training and validation sets experiment
    files use (:mod:`spikefleet.tasks.wakephrase.datasets`).

    As an experiment task (:class:`~spikefleet.tasks.base.Task`): fixed training, validation and
    test sets per seed (:mod:`.datasets`); training draws from split ``"train"`` with the teacher
    rule; every spiking design gets its own integral-rule boundary fitted on the validation set
    (:meth:`fit_decision`, recorded as ``boundary``) and is judged by it (:meth:`judge`), the
    teacher by the teacher rule.
    """

    source: str = "synthetic"
    preset: str = "default"
    split: str = "train"
    keyword: str = ""
    rule: str = "teacher"
    boundary: float = INITIAL_BOUNDARY
    name: str = "wakephrase"
    n_in: int = 16
    n_out: int = 1
    n_train: int = DEFAULT_SIZES["train"]
    n_validation: int = DEFAULT_SIZES["validation"]
    #: the fields an experiment file's [task] table may set (the others are set by the runner)
    experiment_options = ("source", "preset", "keyword", "n_train", "n_validation")
    #: initial input-weight scale of the BPTT recipe relative to XOR: the envelopes are ≈ 30× smaller
    #: (mean |x| 0.008 vs 0.23); with 1 the untrained network is almost silent (1.8 Hz) and BPTT stays
    #: at chance, with 5 it starts at ≈ 39 Hz (N = 256), near the recipe's 20 Hz rate target
    input_gain = 5.0

    def __post_init__(self):
        for f in ("n_train", "n_validation"):
            v = getattr(self, f)
            expect(isinstance(v, int) and not isinstance(v, bool) and v >= 2, f"WakePhraseTask.{f}",
                   "an integer >= 2", v)
        expect(isinstance(self.source, str) and self.source != "", "WakePhraseTask.source",
               "'synthetic' or a WAV folder path", self.source)
        preset(self.preset)
        expect(self.split in SPLITS, "WakePhraseTask.split", f"one of {sorted(SPLITS)}", self.split)
        expect(self.rule in RULES, "WakePhraseTask.rule", f"one of {RULES}", self.rule)
        expect(is_finite_number(self.boundary), "WakePhraseTask.boundary", "a finite number", self.boundary)

    @property
    def config(self) -> WakePhraseConfig:
        return preset(self.preset)

    @property
    def dt(self) -> float:
        return self.config.filterbank.dt

    def generate(self, n: int, seed: int) -> WakePhraseBatch:
        """``n`` samples (indices ``0 … n−1``, balanced) of ``split`` under ``seed``."""
        if self.source == "synthetic":
            return generate(n, seed, self.split, self.config)
        folder = wav.WavFolderConfig(root=self.source, keyword=self.keyword, level_rms=self.config.level_rms,
                                     filterbank=self.config.filterbank)
        return wav.generate(folder, self.split, n, seed)

    def _labelled_only(self):
        if self.rule == "integral-fit":
            raise ConfigError("WakePhraseTask.rule: 'integral-fit' fits its boundary on labelled outputs and only "
                              "scores them (accuracy); decide with rule 'integral' and a fitted boundary "
                              "(with_boundary) instead")

    def decide(self, outputs) -> np.ndarray:
        self._labelled_only()
        return decide_teacher(outputs) if self.rule == "teacher" else decide(outputs, self.boundary)

    def decide_jax(self, outputs):
        self._labelled_only()
        return decide_teacher_jax(outputs) if self.rule == "teacher" else decide_jax(outputs, self.boundary)

    def accuracy(self, outputs, labels) -> float:
        if self.rule == "integral-fit":
            return accuracy(outputs, labels, fit_boundary(outputs, labels))
        return float(np.mean(self.decide(outputs) == np.asarray(labels).reshape(-1)))

    def with_boundary(self, outputs, labels) -> "WakePhraseTask":
        """This task with the integral rule and ``B`` fitted on validation ``(outputs, labels)``."""
        return replace(self, rule="integral", boundary=fit_boundary(outputs, labels))

    # ------------------------------------------------------------------ experiment interface
    @property
    def trial_steps(self) -> int:
        return T_STEPS

    def rule_info(self) -> dict:
        return {"rule": self.rule}

    def test_set(self, trials: int, seed: int, cache_dir=None) -> WakePhraseBatch:
        return dataset(self, "test", trials, seed, cache_dir, version=GENERATOR_VERSION)

    def training_data(self, seed: int, cache_dir=None) -> FixedSets:
        return FixedSets(self, seed, cache_dir, version=GENERATOR_VERSION)

    def training_task(self) -> "WakePhraseTask":
        """Training draws from split ``"train"`` and scores with the teacher rule."""
        return replace(self, split="train", rule="teacher")

    def selection_task(self) -> "WakePhraseTask":
        """Rule ``"integral-fit"``: a design is selected on the integral rule with ``B`` fitted on the
        very validation outputs (the teacher rule kept untrained networks, whose random outputs cross
        0.7 more often than a trained one's)."""
        return replace(self, rule="integral-fit")

    def fit_decision(self, model, validation) -> dict:
        """``{"boundary": B}``: the integral-rule boundary of ``model`` fitted on ``validation``."""
        outputs, _ = run_outputs(model, validation.inputs, chunk=32)
        return {"boundary": fit_boundary(outputs, validation.labels)}

    def judge(self, info: dict) -> "WakePhraseTask":
        """The integral rule with the design's ``boundary``, or the teacher rule for a design without one."""
        boundary = info.get("boundary")
        if boundary is None:
            return replace(self, rule="teacher")
        return replace(self, rule="integral", boundary=float(boundary))
