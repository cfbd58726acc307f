"""MkDocs hook: the site renders its math without a network connection.

* **MathJax from a pinned package.** The math renderer is MathJax 3 (CommonHTML output) from the
  PyPI package ``django-static-mathjax`` (pinned in the ``docs`` extra and ``constraints.txt``; it
  has no dependencies and installs the import package ``mathjax`` holding MathJax's ``es5``
  build). This hook adds the files the site needs (``tex-chtml.js``, the TeX extensions MathJax
  autoloads, the web fonts, the menu and accessibility components with their speech maps) to the
  build under ``javascripts/mathjax/``; ``mkdocs.yml`` loads ``javascripts/mathjax.js`` (the
  configuration) and then ``javascripts/mathjax/tex-chtml.js``.
* **A check after the build.** Every page is scanned for a script, style sheet, font or other
  resource loaded from another host (``<script src>``, ``<link href>``, ``url(...)`` in a
  ``<style>``); any such reference fails the build with the page and the URL. Links a reader
  follows (``<a href>``) are not resources and stay allowed.

Loaded through ``hooks: [docs/_ext/offline_math.py]`` in ``mkdocs.yml``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

#: Where the MathJax files go in the site (``mkdocs.yml``'s ``extra_javascript`` names the same).
TARGET = "javascripts/mathjax"
#: The parts of MathJax's ``es5`` build the site serves: the combined TeX + CommonHTML component,
#: then folders whose files it loads on demand.
ENTRY = "tex-chtml.js"
FOLDERS = ("input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y", "sre/mathmaps")
INSTALL_HINT = ("install the docs extra: pip install -c constraints.txt -e '.[docs]' "
                "(or run python3 dev.py docs)")

_RESOURCE = re.compile(
    r"""<(?:script|img|iframe|source|embed)\b[^>]*?\bsrc\s*=\s*["']?([^"'\s>]+)"""
    r"""|<link\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)"""
    r"""|url\(\s*["']?([^"')\s]+)""",
    re.IGNORECASE,
)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_LINK_REL = re.compile(r"""<link\b[^>]*?\brel\s*=\s*["']?([^"'>]+)""", re.IGNORECASE)


def mathjax_root() -> Path:
    """The ``es5`` folder of the installed MathJax (``django-static-mathjax``)."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(f"offline_math: MathJax (package django-static-mathjax) is not installed; {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if not (root / ENTRY).is_file():
        raise PluginError(f"offline_math: {root / ENTRY} is missing: the installed 'mathjax' package is not "
                          f"django-static-mathjax's MathJax 3 build; {INSTALL_HINT}")
    return root


def on_files(files: Files, config) -> Files:
    """Add MathJax's files from the installed package to the build."""
    root = mathjax_root()
    sources = [root / ENTRY]
    for folder in FOLDERS:
        found = sorted(path for path in (root / folder).rglob("*") if path.is_file())
        if not found:
            raise PluginError(f"offline_math: no files under {root / folder}; {INSTALL_HINT}")
        sources += found
    for path in sources:
        uri = f"{TARGET}/{path.relative_to(root).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def external_resources(html: str) -> list[str]:
    """The URLs of resources (not links to follow) that ``html`` loads from another host."""
    found = []
    for match in _RESOURCE.finditer(html):
        url = next(group for group in match.groups() if group is not None)
        if not _EXTERNAL.match(url):
            continue
        if match.group(2) is not None:  # <link>: only what the browser loads (not rel=canonical etc.)
            rel = _LINK_REL.search(match.group(0))
            kinds = set(rel.group(1).lower().split()) if rel else set()
            if kinds and not kinds & {"stylesheet", "preload", "modulepreload", "preconnect", "prefetch",
                                      "dns-prefetch", "icon", "manifest"}:
                continue
        found.append(url)
    return found


def on_post_build(config) -> None:
    """Fail the build if a page loads anything from another host, or math without MathJax."""
    site = Path(config["site_dir"])
    problems = []
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        where = page.relative_to(site).as_posix()
        problems += [f"{where}: loads {url}" for url in external_resources(html)]
        if 'class="arithmatex"' in html and f"{TARGET}/{ENTRY}" not in html:
            problems.append(f"{where}: has math but does not load {TARGET}/{ENTRY}")
    if not (site / TARGET / ENTRY).is_file():
        problems.append(f"{TARGET}/{ENTRY} is missing from the site")
    if problems:
        raise PluginError("offline_math: the site must work without a network connection:\n  "
                          + "\n  ".join(problems))
