"""The HTML fleet report: structure, embedded images, summaries, robustness to missing pieces,
determinism, and a headless-Chromium rendering check (installs Chromium with apt when missing)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import jax
import matplotlib.image as mpimg
import numpy as np
import pytest

from spikefleet.experiments import report_plots as rp
from spikefleet.experiments.report import SECTIONS, markdown_to_html, render_report, summary_rows
from spikefleet.experiments.summary import pool_rows
from spikefleet.fleet.stats import summarize
from spikefleet.models.rate import RateConfig, init_rate
from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.tasks import get_task
from spikefleet.tasks.xor import XorConfig
from spikefleet.models.ads import ADSConfig, build_ads

TASK = get_task("xor", config=XorConfig(duration=0.2))
DESIGNS = ("alpha", "beta")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def synthetic_rows(levels=(0.0, 0.1, 0.2), chips=8, seeds=(0,)) -> list[dict]:
    rng = np.random.default_rng(42)
    rows = []
    for k, design in enumerate(DESIGNS):
        for seed in seeds:
            for level in levels:
                acc = np.clip(0.97 - k * 0.05 - 1.5 * level * rng.uniform(0.2, 1.0, chips), 0, 1)
                rows.append({"design": design, "seed": seed, "sweep": "mismatch", "level": level,
                             "condition": f"mismatch=uniformx{level:g}",
                             "metrics": {"accuracy": acc.tolist(), "mse": (0.1 + level + rng.random(chips)).tolist(),
                                         "rate_hz": rng.normal(20, 2, chips).tolist()}})
            for bits in (0, 4):
                acc = np.clip(0.95 - 0.1 * (bits == 4) - 0.05 * rng.random(chips), 0, 1)
                rows.append({"design": design, "seed": seed, "sweep": "quant", "level": bits,
                             "condition": f"{bits}-bit" if bits else "nominal",
                             "metrics": {"accuracy": acc.tolist(), "mse": (0.2 + rng.random(chips)).tolist()}})
    return rows


def tiny_designs() -> dict:
    cfg = SpikingConfig(n_in=1, n_hidden=16, n_out=1)
    return {name: init_spiking(cfg, jax.random.PRNGKey(i), in_scale=10.0) for i, name in enumerate(DESIGNS)}


class _Page(HTMLParser):
    """Collects what the checks need: images, links, section ids, tables and headings."""

    def __init__(self):
        super().__init__()
        self.imgs, self.urls, self.ids, self.tables, self.headings, self._h = [], [], [], 0, [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for key in ("src", "href", "action", "data", "poster"):
            if key in a and tag != "img":
                self.urls.append(a[key])
        if "id" in a:
            self.ids.append(a["id"])
        self.tables += tag == "table"
        if tag in ("h2", "h3"):
            self._h = ""

    def handle_data(self, data):
        if self._h is not None:
            self._h += data

    def handle_endtag(self, tag):
        if tag in ("h2", "h3") and self._h is not None:
            self.headings.append(self._h.strip())
            self._h = None


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def decode_png(src: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:60]
    data = base64.b64decode(src[len(prefix):], validate=True)
    assert data.startswith(PNG_SIGNATURE) and len(data) > 2000
    return mpimg.imread(io.BytesIO(data), format="png")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    tables = [("Extra <table>", "# heading\n\n| a | b |\n|---|---|\n| 1 | <x> |\n"), ("Rows", [{"k": 1, "v": 0.25}])]
    path = render_report(synthetic_rows(), out, designs=tiny_designs(), task=TASK, title="Test & report",
                         tables=tables, seed=3)
    return path, path.read_text(encoding="utf-8")


def test_page_parses_with_all_sections(report):
    path, text = report
    assert path.is_file() and text.startswith("<!DOCTYPE html>")
    page = parse(text)
    for anchor, heading, _ in SECTIONS:
        assert anchor in page.ids and heading in page.headings
    assert "Test &amp; report" in text and "spikefleet 0." in text and "jax " in text
    assert "Extra &lt;table&gt;" in text and "&lt;x&gt;" in text and "<x>" not in text
    # overview + 2 sweeps + distributions + 2 activity + 2 weight figures
    assert len(page.imgs) == 8
    assert page.tables >= 4  # two summary tables, two extra tables
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # atomic write, no temp file left


def test_every_image_is_a_nonblank_png(report):
    for src in parse(report[1]).imgs:
        img = decode_png(src)
        assert img.shape[0] > 150 and img.shape[1] > 300
        assert float(img[..., :3].std()) > 0.02


def test_no_external_references(report):
    text = report[1]
    page = parse(text)
    assert all(u.startswith("#") for u in page.urls), page.urls
    assert all(src.startswith("data:") for src in page.imgs)
    assert not re.search(r"https?:|ftp:|@import|<link|<iframe|src=['\"]//", text, re.IGNORECASE)


def test_summaries_pool_seeds():
    rows = synthetic_rows(levels=(0.0, 0.2), seeds=(1, 0))
    groups = pool_rows(rows)
    g = groups[("beta", "mismatch", 0.2)]
    assert g.seeds == (0, 1) and g.n == 16
    chips = np.concatenate([r["metrics"]["accuracy"] for r in sorted(rows, key=lambda r: r["seed"])
                            if (r["design"], r["sweep"], r["level"]) == ("beta", "mismatch", 0.2)])
    ref = summarize(chips, threshold=0.9)
    row = next(r for r in summary_rows(groups) if (r["design"], r["sweep"], r["level"]) == ("beta", "mismatch", "0.2"))
    assert row["n"] == 16 and row["seeds"] == "0,1"
    for key, want in (("median", ref.median), ("IQR", ref.iqr), ("p5", ref.p5), ("worst", ref.worst),
                      ("yield", ref.yield_)):
        assert row[key] == pytest.approx(want)
    assert row["median mse"] == pytest.approx(np.median(np.concatenate(
        [r["metrics"]["mse"] for r in rows if (r["design"], r["sweep"], r["level"]) == ("beta", "mismatch", 0.2)])))
    # quantisation levels: full precision first, then falling bits
    assert [r["level"] for r in summary_rows(groups) if r["sweep"] == "quant"][::2] == ["float", "4 bit"]


def test_missing_pieces(tmp_path):
    one = [r for r in synthetic_rows(chips=3) if r["sweep"] == "quant" and r["level"] == 4]
    text = render_report(one, tmp_path / "one.html").read_text()
    page = parse(text)
    assert len(page.imgs) == 3  # overview, quant markers, histograms (few chips, no mismatch sweep)
    assert "No designs given" in text and "No mismatch sweep" in text and "markers with IQR whiskers" in text
    empty = parse(render_report([], tmp_path / "empty.html", designs={}, tables=[("t", [["a", "b"], [1, 2]])])
                  .read_text())
    assert empty.imgs == [] and all(a in empty.ids for a, _, _ in SECTIONS)
    no_task = render_report(one, tmp_path / "no_task.html", designs=tiny_designs()).read_text()
    assert "No task given" in no_task and len(parse(no_task).imgs) == 5  # + 2 weight figures


def test_composite_and_rate_designs():
    teacher = init_rate(RateConfig(n_in=1, n_hidden=16, n_out=1), jax.random.PRNGKey(0))
    ads = build_ads(teacher, ADSConfig(n=16), jax.random.PRNGKey(1))
    png, notes = rp.plot_activity("teacher", teacher, TASK, 0, "#123456")
    assert png.startswith(PNG_SIGNATURE) and any("rate network" in n for n in notes)
    png, notes = rp.plot_activity("ads", ads, TASK, 0, "#123456")
    assert png.startswith(PNG_SIGNATURE) and notes == []
    png, notes = rp.plot_weights("ads", ads, "#123456")
    assert png.startswith(PNG_SIGNATURE) and any("w_rec is constant" in n for n in notes)  # Ω^s starts at 0
    wrong = init_spiking(SpikingConfig(n_in=3, n_hidden=4, n_out=1), jax.random.PRNGKey(0))
    assert rp.plot_activity("wrong", wrong, TASK, 0, "#123456")[0] is None


def test_deterministic_for_a_seed(report, tmp_path):
    again = render_report(synthetic_rows(), tmp_path / "again.html", designs=tiny_designs(), task=TASK, seed=3)
    assert parse(again.read_text()).imgs == parse(report[1]).imgs


def test_markdown_subset():
    out = markdown_to_html("## Title\n| x | y |\n|:--|--:|\n| <b> | 2 |\ntext & more")
    assert out.count("<table>") == 1 and "<th>x</th>" in out and "<td>&lt;b&gt;</td>" in out
    assert "<h4>Title</h4>" in out and "<p>text &amp; more</p>" in out


# ----------------------------------------------------------------------------- headless Chromium


def find_chromium() -> str:
    """Path of a Chromium binary, or a skip that says why there is none. The test never installs a
    browser: ``.ci/run`` installs Chromium before the tests (in CI a skip fails the run, see
    tests/conftest.py); elsewhere install it yourself (e.g. ``apt-get install chromium``)."""
    found = next((p for p in CHROMIUM_CANDIDATES if os.access(p, os.X_OK)), None) or shutil.which("chromium")
    if not found:
        pytest.skip(f"no Chromium found ({', '.join(CHROMIUM_CANDIDATES)} or `chromium` on PATH): install it to "
                    "render the report in a headless browser (.ci/run does, in CI)")
    return found


def _chromium(binary: str, url: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [binary, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_renders_in_headless_chromium(report, tmp_path):
    binary = find_chromium()
    path, text = report
    url = path.resolve().as_uri()
    shot = tmp_path / "screenshot.png"
    res = _chromium(binary, url, f"--screenshot={shot}", "--window-size=1280,4000")
    assert shot.is_file(), res.stderr[-2000:]
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (4000, 1280)
    assert float(img.std()) > 0.05  # not a blank page
    assert float(np.mean(img.min(axis=-1) < 0.9)) > 0.02  # a fair share of non-white pixels
    dom = _chromium(binary, url, "--dump-dom", "--virtual-time-budget=10000")
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stderr[-2000:]
    n_imgs = len(parse(text).imgs)
    assert f'data-images-total="{n_imgs}"' in body.group(0), body.group(0)
    assert 'data-images-broken="0"' in body.group(0) and 'data-images-ok="true"' in body.group(0)
