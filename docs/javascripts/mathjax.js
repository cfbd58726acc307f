// MathJax configuration for the math that pymdownx.arithmatex (generic mode) wraps in .arithmatex
// as \( ... \) and \[ ... \]. MathJax itself is served from this site (javascripts/mathjax/,
// copied from the pinned django-static-mathjax package by docs/_ext/offline_math.py): no network.
window.MathJax = {
  loader: { load: ["[tex]/textmacros"] }, // \_ and friends inside \text{} / \texttt{}
  tex: {
    packages: { "[+]": ["textmacros"] },
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

// Material for MkDocs may swap page content without a reload (instant navigation): typeset the
// new content. The first page is left to MathJax's start-up (clearing its output cache after that
// typeset would drop the glyph styles of the math already on the page).
let firstPage = true;
document$.subscribe(() => {
  if (firstPage) {
    firstPage = false;
    return;
  }
  MathJax.startup.promise.then(() => {
    MathJax.startup.output.clearCache();
    MathJax.typesetClear();
    MathJax.texReset();
    return MathJax.typesetPromise();
  });
});
