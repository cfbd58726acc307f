"""Tests for the Hey Snips substitute: front end, synthetic corpus, decision rules, WAV loader.

References are independent of the code under test: closed-form Butterworth magnitudes (bilinear
transform with pre-warping), the rectified-sine Fourier series, the mel formula, plain Python
loops for the decision rule, and hand-made WAV files.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from scipy.io import wavfile

from spikefleet.errors import ConfigError
from spikefleet.tasks.wakephrase import filterbank as fb
from spikefleet.tasks.wakephrase import task as wp
from spikefleet.tasks.wakephrase import synth as syn
from spikefleet.tasks.wakephrase import wav

FS = 16000
CFG = fb.FilterbankConfig()


# ------------------------------------------------------------------------------- filterbank
def _bandpass_mag(f, lo, hi, order=2):
    """|H| of a digital Butterworth band-pass (bilinear transform, pre-warped edges)."""
    w, w1, w2 = (np.tan(np.pi * np.asarray(x, float) / FS) for x in (f, lo, hi))
    return 1.0 / np.sqrt(1.0 + ((w ** 2 - w1 * w2) / (w * (w2 - w1))) ** (2 * order))


def _lowpass_mag(f, fc=400.0, order=2):
    return 1.0 / np.sqrt(1.0 + (np.tan(np.pi * np.asarray(f, float) / FS) / np.tan(np.pi * fc / FS)) ** (2 * order))


def test_band_edges_follow_the_mel_formula():
    edges = fb.band_edges(CFG)
    mel = 2595.0 * np.log10(1.0 + edges[:, 0] / 700.0)
    top = 8000.0 / (1 + 2 / 16) - 1
    expected = np.linspace(2595 * math.log10(1 + 400 / 700), 2595 * math.log10(1 + top / 700), 16)
    np.testing.assert_allclose(mel, expected, rtol=1e-12)
    np.testing.assert_allclose(edges[:, 1], edges[:, 0] * (1 + 2 / 16), rtol=1e-12)
    assert edges[0, 0] == pytest.approx(400.0) and edges[-1, 1] < FS / 2
    assert fb.hz_to_mel(1000.0) == pytest.approx(2595 * math.log10(1 + 1000 / 700))
    np.testing.assert_allclose(fb.mel_to_hz(fb.hz_to_mel(edges)), edges, rtol=1e-12)


def test_channel_gains_match_closed_form_butterworth():
    edges, f0 = fb.band_edges(CFG), fb.centre_frequencies(CFG)
    freqs = np.linspace(100, 7900, 157)
    gains = fb.channel_gain(freqs, CFG)
    for k, (lo, hi) in enumerate(edges):
        np.testing.assert_allclose(gains[k], _bandpass_mag(freqs, lo, hi), rtol=1e-7, atol=1e-10)
        assert fb.channel_gain([f0[k]], CFG)[k, 0] == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(fb.channel_gain(edges[k], CFG)[k], 2 ** -0.5, rtol=1e-7)
    assert np.all(np.diff(f0) > 0) and np.all((f0 > edges[:, 0]) & (f0 < edges[:, 1]))


@pytest.fixture(scope="module")
def tone_envelopes():
    t = np.arange(40000) / FS
    f0 = fb.centre_frequencies(CFG)
    amp = 0.3
    return amp, f0, fb.filterbank(amp * np.sin(2 * np.pi * f0[:, None] * t), CFG)


def test_pure_tone_at_centre_lands_in_its_channel(tone_envelopes):
    _, _, env = tone_envelopes
    assert env.shape == (16, 2500, 16) and env.dtype == np.float32
    mean = env[:, 500:].mean(axis=1)  # steady state
    assert np.array_equal(np.argmax(mean, axis=1), np.arange(16))


@pytest.mark.parametrize("k", [0, 5, 15])
def test_tone_envelope_matches_rectified_sine_series(tone_envelopes, k):
    amp, f0, env = tone_envelopes
    e = env[k, 500:, k].astype(np.float64)
    mean = 2 * amp / np.pi  # |H_k(f0)| = 1
    ripple = 4 * amp / np.pi * sum(_lowpass_mag(2 * j * f0[k]) / (4 * j * j - 1) for j in range(1, 200))
    assert e.mean() == pytest.approx(mean, rel=0.02 if k == 0 else 2e-3)
    assert e.max() <= mean + ripple + 1e-4 and e.min() >= mean - ripple - 1e-4


def test_filterbank_equals_plain_sosfilt_pipeline():
    from scipy.signal import butter, sosfilt

    x = np.random.default_rng(1).standard_normal((2, 8003))
    lp = butter(2, 400.0, fs=FS, output="sos")
    ref = np.stack([sosfilt(lp, np.abs(sosfilt(butter(2, e, btype="band", fs=FS, output="sos"), x)))[:, ::16]
                    for e in fb.band_edges(CFG)], axis=-1)
    got = fb.filterbank(x)
    assert got.shape == ref.shape == (2, 501, 16)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)


def test_filterbank_shapes_workers_and_errors():
    x = np.random.default_rng(0).standard_normal((3, 8000))
    a, b = fb.filterbank(x, workers=1), fb.filterbank(x, workers=2, chunk=1)
    assert a.shape == (3, 500, 16) and np.array_equal(a, b)
    assert fb.filterbank(x[0]).shape == (500, 16)
    np.testing.assert_allclose(np.sqrt(np.mean(fb.normalize_level(x) ** 2, axis=-1)), fb.LEVEL_RMS)
    with pytest.raises(ConfigError, match="finite"):
        fb.filterbank(np.full(100, np.nan))
    with pytest.raises(ConfigError, match="waveforms"):
        fb.filterbank(np.zeros((2, 2, 100)))
    with pytest.raises(ConfigError, match="cutoff_hz"):
        fb.FilterbankConfig(cutoff_hz=9000.0)


# --------------------------------------------------------------------------- synthetic corpus
@pytest.fixture(scope="module")
def corpus():
    return wp.synthesize(8, 0, "train", components=True)


def test_corpus_shapes_labels_and_metadata(corpus):
    c, _ = corpus
    assert c.waveforms.shape == (8, 80000) and c.waveforms.dtype == np.float32
    assert c.targets.shape == (8, 5000) and c.targets.dtype == np.float32
    assert c.labels.tolist() == [1, 0] * 4  # exactly balanced
    for m, y, label in zip(c.meta, c.targets, c.labels):
        assert m["version"] == wp.GENERATOR_VERSION and m["label"] == label
        assert syn.contains(m["syllables"]) == label
        assert set(m["speaker"]) == {"f0_hz", "vtl", "rate", "level_db"}
        assert m["noise_family"] in syn.NOISE_FAMILIES
        if label:
            assert m["offset_s"] <= 3.0 + 1e-9 and m["offset_s"] - m["onset_s"] > 0.4
            peak = np.argmax(y) * 1e-3
            assert peak == pytest.approx(m["offset_s"] + 0.45, abs=2e-3) and y.max() == pytest.approx(1, abs=1e-4)
        else:
            assert not y.any() and m["onset_s"] is None
    np.testing.assert_allclose(np.sqrt(np.mean(c.waveforms.astype(float) ** 2, axis=1)), fb.LEVEL_RMS, rtol=1e-5)


def test_mixture_snr_is_10_db(corpus):
    c, (speech, noise) = corpus
    for m, s, n, w in zip(c.meta, speech, noise, c.waveforms):
        a, b = (int(round(x * FS)) for x in m["speech_span_s"])
        snr = 10 * np.log10(np.mean(s[a:b] ** 2) / np.mean(n[a:b] ** 2))
        assert snr == pytest.approx(10.0, abs=1e-6) and m["snr_db"] == pytest.approx(10.0, abs=1e-6)
        mix = s + n
        np.testing.assert_allclose(w, mix * fb.LEVEL_RMS / np.sqrt(np.mean(mix ** 2)), atol=1e-6)


def test_generation_is_deterministic_and_batch_independent(corpus):
    c, _ = corpus
    again = wp.synthesize(3, 0, "train", start=3, chunk=1, workers=2)
    assert np.array_equal(again.waveforms, c.waveforms[3:6]) and again.labels.tolist() == [0, 1, 0]
    assert np.array_equal(wp.synthesize(2, 0, "train", workers=1).waveforms, c.waveforms[:2])


def test_splits_and_seeds_are_disjoint(corpus):
    c, _ = corpus
    digests = {hashlib.sha256(w.tobytes()).hexdigest() for w in c.waveforms}
    speakers = {m["speaker"]["f0_hz"] for m in c.meta}
    for split, seed in (("validation", 0), ("test", 0), ("train", 1)):
        other = wp.synthesize(4, seed, split)
        assert not digests & {hashlib.sha256(w.tobytes()).hexdigest() for w in other.waveforms}
        assert not speakers & {m["speaker"]["f0_hz"] for m in other.meta}


PINNED = {  # sha256 (first 16 hex digits) of the float32 waveforms of preset "default", seed 0
    ("train", 0): "1955883222b98c6b", ("train", 1): "0238a5820bb2e857",
    ("validation", 0): "34d30aea4a2af6bc", ("validation", 1): "27fe97e4b9740900",
    ("test", 0): "fd4a400f699d0f4f", ("test", 1): "96c243ec4fff50b3",
}


def test_pinned_checksums():
    got = {}
    for split in ("train", "validation", "test"):
        c = wp.synthesize(2, 0, split)
        for i in (0, 1):
            got[(split, i)] = hashlib.sha256(c.waveforms[i].tobytes()).hexdigest()[:16]
    assert got == PINNED, "synthesis changed: bump GENERATOR_VERSION and re-pin"


def test_all_channels_are_excited(corpus):
    c, _ = corpus
    feats = fb.front_end(c.waveforms)
    assert feats.shape == (8, 5000, 16)
    peak = feats.max(axis=(0, 1))
    assert np.all(peak > 0.02) and feats.max() < 1.0 and np.percentile(feats, 99) < 0.25


def test_target_bump_points_and_shape():
    t = np.array([0.0, 0.45, 0.95, 1.35, 1.75, 2.0, 2.5, -0.1])
    np.testing.assert_allclose(wp.target_bump(t), [0, 1, 0.51, 0.16, 0.045, 0, 0, 0], atol=1e-12)
    rise, fall = wp.target_bump(np.linspace(0, 0.45, 50)), wp.target_bump(np.linspace(0.45, 2.0, 200))
    assert np.all(np.diff(rise) > 0) and np.all(np.diff(fall) <= 0)


def test_hard_negatives_follow_the_knobs():
    cfg = wp.WakePhraseConfig(hard_negative_share=1.0, similarity=1.0, hard_mix=(1.0, 0.0, 0.0, 0.0))
    for i in range(40):
        kind, main = syn._main_token(np.random.default_rng(i), 0, cfg)
        diff = [j for j in range(3) if main[j] != syn.WAKE[j]]
        assert kind == "substitute-near" and len(diff) == 1 and main[diff[0]] in syn.NEAR[syn.WAKE[diff[0]]]
    for mix in ((0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)):
        for i in range(20):
            kind, main = syn._main_token(np.random.default_rng(i), 0, wp.WakePhraseConfig(
                hard_negative_share=1.0, hard_mix=mix))
            assert syn.contains(main) == 0 and kind == syn.HARD_KINDS[mix.index(1)]
    kind, _ = syn._main_token(np.random.default_rng(0), 0, wp.WakePhraseConfig(hard_negative_share=1.0,
                                                                                 similarity=0.0, hard_mix=(1, 0, 0, 0)))
    assert kind == "substitute-far"
    with pytest.raises(ConfigError, match="hard_negative_share"):
        wp.WakePhraseConfig(hard_negative_share=1.5)


def test_task_interface():
    task = wp.WakePhraseTask()
    assert (task.name, task.n_in, task.n_out, task.dt) == ("wakephrase", 16, 1, 1e-3)
    batch = task.generate(2, 5)
    assert batch.inputs.shape == (2, 5000, 16) and batch.inputs.dtype == np.float32
    assert batch.targets.shape == (2, 5000, 1) and batch.labels.tolist() == [1, 0]
    assert task.accuracy(batch.targets, batch.labels) == 1.0
    fitted = task.with_boundary(batch.targets, batch.labels)
    assert fitted.rule == "integral" and fitted.accuracy(batch.targets, batch.labels) == 1.0
    with pytest.raises(ConfigError, match="preset"):
        wp.WakePhraseTask(preset="nope")


# ---------------------------------------------------------------------------- decision rules
def _integral_loop(y):
    out = []
    for row in y:
        s, run, best = row[0], 0.0, 0.0
        for t, v in enumerate(row):
            s = v if t == 0 else 0.95 * s + 0.05 * v
            run = run + s if s >= 0.5 else 0.0
            best = max(best, run)
        out.append(best)
    return np.array(out)


@pytest.fixture(scope="module")
def outputs():
    rng = np.random.default_rng(3)
    t = np.arange(600) * 1e-3
    y = rng.normal(0, 0.15, (40, 600)) + rng.uniform(0.2, 1.2, (40, 1)) * np.exp(-((t - 0.3) / 0.08) ** 2)
    return y[..., None], (rng.random(40) < 0.5).astype(int)


def test_integral_rule_matches_python_loop(outputs):
    y, _ = outputs
    ref = _integral_loop(y[..., 0])
    np.testing.assert_allclose(wp.integrals(y), ref, rtol=1e-9, atol=1e-9)
    assert wp.decide(y, 20.0).tolist() == (ref > 20.0).astype(int).tolist()
    assert wp.decide(y).tolist() == (ref > 200.0).astype(int).tolist()


def test_fit_boundary_matches_brute_force(outputs):
    y, labels = outputs
    labels = (wp.integrals(y) > np.median(wp.integrals(y))).astype(int) ^ (np.arange(40) % 7 == 0)
    values = _integral_loop(y[..., 0])
    best, best_acc = None, -1.0
    for c in np.linspace(values.min(), values.max(), 1000):
        acc = np.mean((values > c).astype(int) == labels)
        if acc >= best_acc:  # ties go to the later candidate
            best, best_acc = c, acc
    assert wp.fit_boundary(y, labels) == pytest.approx(best, rel=1e-9)
    assert wp.accuracy(y, labels, wp.fit_boundary(y, labels)) == pytest.approx(best_acc)


def test_jax_rules_match_numpy(outputs):
    y, _ = outputs
    for b in (0.0, 10.0, 40.0):
        assert np.asarray(wp.decide_jax(y.astype(np.float32), b)).tolist() == wp.decide(y, b).tolist()
    assert np.asarray(wp.decide_teacher_jax(y)).tolist() == (y[..., 0].max(1) > 0.7).astype(int).tolist()
    assert wp.decide_teacher(y).tolist() == (y[..., 0].max(1) > 0.7).astype(int).tolist()


# ------------------------------------------------------------------------------- WAV loader
def _tone(rate, seconds, freq, dtype, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels == 2:
        x = np.stack([x, 0.5 * x], axis=1)
    if dtype == np.int16:
        return (x * 32767).astype(np.int16)
    return x.astype(dtype)


@pytest.fixture(scope="module")
def sc_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech_commands")
    layout = {"hey": (8000, np.int16, 1, 1200.0), "stop": (16000, np.float32, 2, 700.0),
              "go": (16000, np.int16, 1, 3000.0)}
    for word, (rate, dtype, ch, freq) in layout.items():
        (root / word).mkdir()
        for j in range(6):
            wavfile.write(root / word / f"c{j}.wav", rate, _tone(rate, 0.5 + 0.1 * j, freq, dtype, ch))
    (root / "_background_noise_").mkdir()
    wavfile.write(root / "_background_noise_" / "white.wav", 16000,
                  np.random.default_rng(0).normal(0, 0.1, 24000).astype(np.float32))
    (root / "validation_list.txt").write_text("hey/c0.wav\nstop/c0.wav\ngo/c0.wav\n")
    (root / "testing_list.txt").write_text("hey/c1.wav\nstop/c1.wav\n")
    return root


def test_read_wav_formats(tmp_path):
    wavfile.write(tmp_path / "a.wav", 8000, _tone(8000, 0.25, 500.0, np.int16))
    wavfile.write(tmp_path / "b.wav", 16000, _tone(16000, 0.25, 500.0, np.float32, channels=2))
    wavfile.write(tmp_path / "c.wav", 16000, np.full(10, 200, np.uint8))
    a, b = wav.read_wav(tmp_path / "a.wav"), wav.read_wav(tmp_path / "b.wav")
    assert a.size == 4000 and b.size == 4000
    ref = 0.75 * _tone(16000, 0.25, 500.0, np.float64)  # mean of the two channels
    np.testing.assert_allclose(b, ref, atol=1e-6)
    np.testing.assert_allclose(a[400:3600], 0.5 * np.sin(2 * np.pi * 500 * np.arange(400, 3600) / 16000),
                               atol=2e-3)  # 8 kHz int16 resampled to 16 kHz
    np.testing.assert_allclose(wav.read_wav(tmp_path / "c.wav"), 72 / 128)


def test_malformed_wavs_name_the_file(tmp_path):
    wavfile.write(tmp_path / "ok.wav", 16000, _tone(16000, 0.2, 500.0, np.int16))
    data = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "trunc.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.wav").write_bytes(b"definitely not a RIFF file")
    wavfile.write(tmp_path / "i64.wav", 16000, np.zeros(10, np.int64))
    for name, pattern in (("trunc.wav", "truncated"), ("junk.wav", "readable"), ("i64.wav", "int64")):
        with pytest.raises(ConfigError, match=pattern) as err:
            wav.read_wav(tmp_path / name)
        assert name in str(err.value)


def test_speech_commands_loader(sc_folder):
    cfg = wav.WavFolderConfig(root=str(sc_folder), keyword="hey")
    assert wav.split_size(cfg, "train") == 8 and wav.split_size(cfg, "validation") == 2
    c = wav.load(cfg, "train", seed=1)
    assert c.waveforms.shape == (8, 80000) and c.labels.tolist() == [1, 0] * 4
    for m, y, label in zip(c.meta, c.targets, c.labels):
        assert all(f.split("/")[0] == "hey" for f in m["files"]) == bool(label)
        assert m["snr_db"] == pytest.approx(10.0, abs=1e-9) and m["noise_file"].endswith("white.wav")
        clip_len = wav.read_wav(sc_folder / m["files"][0]).size / FS
        assert m["offset_s"] == pytest.approx(m["onset_s"] + clip_len, abs=0.011)
        assert (y.max() == pytest.approx(1.0, abs=1e-4)) == bool(label)
    assert np.array_equal(wav.load(cfg, "train", 4, seed=1).waveforms, c.waveforms[:4])
    batch = wp.WakePhraseTask(source=str(sc_folder), keyword="hey", split="validation").generate(2, 0)
    assert batch.inputs.shape == (2, 5000, 16) and batch.labels.tolist() == [1, 0]


def test_generic_layout_and_loader_errors(sc_folder, tmp_path):
    with pytest.raises(ConfigError, match="existing folder"):
        wav.load(wav.WavFolderConfig(root=str(tmp_path / "missing"), keyword="hey"))
    with pytest.raises(ConfigError, match="'nope'") as err:
        wav.load(wav.WavFolderConfig(root=str(sc_folder), keyword="nope"))
    assert "hey" in str(err.value)
    for c in ("positive", "negative"):
        (tmp_path / c).mkdir()
        for j in range(4):
            wavfile.write(tmp_path / c / f"{j}.wav", 16000, _tone(16000, 0.4, 800.0 + 500 * (c == "negative"),
                                                                    np.int16))
    (tmp_path / "testing_list.txt").write_text("negative/3.wav\n")
    c = wav.load(wav.WavFolderConfig(root=str(tmp_path)), "train", 4)
    assert c.labels.tolist() == [1, 0, 1, 0] and all(m["snr_db"] == math.inf for m in c.meta)
    (tmp_path / "positive" / "bad.wav").write_bytes(b"RIFF")
    with pytest.raises(ConfigError, match="bad.wav"):
        wav.load(wav.WavFolderConfig(root=str(tmp_path), layout="generic"), "train", 40)


# ------------------------------------------------------------------------------ calibration
@pytest.mark.slow
def test_teacher_calibration_lands_in_band():
    from spikefleet.studies.wakephrase_calibration import calibrate_teacher

    report = calibrate_teacher()
    assert 0.85 <= report["accuracy"]["test"] <= 0.95, report["accuracy"]
