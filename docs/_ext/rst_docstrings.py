"""Griffe extension: render spikefleet's reST-flavoured docstrings as Markdown.

spikefleet's docstrings are written for reading in the source and in ``help()``: they use a few
reStructuredText constructs that Markdown does not know. This extension rewrites the docstring
text (only for the documentation site; the source is untouched) before mkdocstrings parses it:

* roles ``:func:`x```, ``:class:`~a.b.C``` … become code spans (``x``, ``C``);
* literal blocks (a paragraph ending in ``::`` followed by an indented block) become fenced
  code blocks, so that equations keep their layout;
* simple tables (``====  ====`` borders) become Markdown tables;
* underlined section titles (``Title`` over ``-----``) become bold paragraphs;
* list items get the 4-space continuation indent that Python-Markdown needs;
* an attribute (module constant or class field) without a docstring gets its ``#:`` comment
  block or its trailing source comment as one (``tau_mem: jax.Array  # [N] s`` is documented
  as "[N] s").

Loaded by mkdocstrings-python through ``extensions: [docs/_ext/rst_docstrings.py]`` in
``mkdocs.yml``.
"""

from __future__ import annotations

import io
import re
import tokenize

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")
_BORDER = re.compile(r"^(\s*)=+( +=+)+\s*$")
_UNDERLINE = re.compile(r"^\s*([-=~^*])\1{2,}\s*$")
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+\.)\s+")


def _role(match: re.Match) -> str:
    short, target = match.groups()
    target = target.strip()
    if "<" in target and target.endswith(">"):  # :func:`text <target>`
        target = target.split("<")[0].strip()
    if short:
        target = target.split(".")[-1]
    return f"`{target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content_column(line: str) -> int:
    """Where a paragraph's nested content starts (list items: marker indent + 4, Python-Markdown)."""
    match = _LIST_ITEM.match(line)
    return _indent(line) + 4 if match else _indent(line)


def _lists(lines: list[str]) -> list[str]:
    """Re-indent the continuation lines of list items from the marker width to 4 spaces, and
    start every item after a paragraph line with a blank line (Python-Markdown needs both)."""
    out = list(lines)
    for i, line in enumerate(lines):
        match = _LIST_ITEM.match(line)
        if not match:
            continue
        base, width = _indent(line), match.end() - _indent(line)
        if width == 4:
            continue
        j = i + 1
        while j < len(lines):
            nxt = lines[j]
            if not nxt.strip():
                k = j + 1
                while k < len(lines) and not lines[k].strip():
                    k += 1
                if k < len(lines) and _indent(lines[k]) >= base + width:
                    j = k
                    continue
                break
            if _indent(nxt) < base + width:
                break
            out[j] = " " * (base + 4) + out[j][base + width:] if out[j].strip() else out[j]
            j += 1
    spaced: list[str] = []
    for line in out:
        if _LIST_ITEM.match(line) and spaced and spaced[-1].strip() and not _LIST_ITEM.match(spaced[-1]):
            spaced.append("")
        spaced.append(line)
    return spaced


def _literal_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if not (stripped.endswith("::") and not stripped.endswith(":::")):
            out.append(line)
            i += 1
            continue
        column = _content_column(line)
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or _indent(lines[j]) <= column:
            out.append(stripped[:-1])  # "text::" without a block: plain "text:"
            i += 1
            continue
        block_end = j
        k = j
        while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > column):
            if lines[k].strip():
                block_end = k + 1
            k += 1
        block = lines[j:block_end]
        text = stripped[:-2]
        if text.strip():  # reST: "text::" reads "text:", "text ::" reads "text"
            out.append(text.rstrip() if text.endswith(" ") else text + ":")
        shift = min(_indent(b) for b in block if b.strip())
        pad = " " * column
        out.append("")
        out.append(pad + "```text")
        out.extend((pad + b[shift:]) if b.strip() else "" for b in block)
        out.append(pad + "```")
        out.append("")
        i = block_end
    return out


def _split_row(line: str, starts: list[int]) -> list[str]:
    cells, bounds = [], []
    for k, start in enumerate(starts):
        if k == 0:
            bounds.append(0)
            continue
        b = start
        while 0 < b < len(line) and line[b - 1] != " ":  # text runs past the column: cut at the next space
            b += 1
        bounds.append(min(b, len(line)))
    bounds.append(len(line))
    for k in range(len(starts)):
        cells.append(line[bounds[k]:bounds[k + 1]].strip())
    return cells


def _escape_pipes(cell: str) -> str:
    parts = re.split(r"(`[^`]*`)", cell)
    return "".join(p if p.startswith("`") else p.replace("|", r"\|") for p in parts)


def _tables(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        border = lines[i]
        base = _indent(border)
        starts = [m.start() for m in re.finditer(r"=+", border)]
        borders = [i]
        k = i + 1
        while k < len(lines) and len(borders) < 3:
            if _BORDER.match(lines[k]):
                borders.append(k)
                # a table ends at the border followed by a blank line (or the end)
                if k + 1 >= len(lines) or not lines[k + 1].strip():
                    break
            k += 1
        if len(borders) < 2:
            out.append(lines[i])
            i += 1
            continue
        end = borders[-1]
        header_rows = lines[borders[0] + 1:borders[1]] if len(borders) == 3 else []
        body_rows = lines[borders[-2] + 1:end] if len(borders) == 3 else lines[borders[0] + 1:end]

        def rows_of(raw):
            rows = []
            for row in raw:
                if not row.strip():
                    continue
                cells = _split_row(row, starts)
                if rows and not cells[0]:
                    rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
                else:
                    rows.append(cells)
            return rows

        header = rows_of(header_rows)
        body = rows_of(body_rows)
        head = header[0] if header else [" "] * len(starts)
        pad = " " * base
        out.append("")
        out.append(pad + "| " + " | ".join(_escape_pipes(c) or " " for c in head) + " |")
        out.append(pad + "|" + "|".join("---" for _ in starts) + "|")
        for row in body:
            out.append(pad + "| " + " | ".join(_escape_pipes(c) for c in row) + " |")
        out.append("")
        i = end + 1
    return out


def _titles(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if (_UNDERLINE.match(line) and out and out[-1].strip() and not _BORDER.match(out[-1])
                and len(line.strip()) >= len(out[-1].strip()) - 2):
            out[-1] = " " * _indent(out[-1]) + f"**{out[-1].strip()}**"
            out.append("")
            continue
        out.append(line)
    return out


def _no_reference_links(lines: list[str]) -> list[str]:
    """Escape ``a[i][j]`` outside code: Markdown (and mkdocs-autorefs) would read it as a link."""
    out, fenced = [], False
    for line in lines:
        if line.strip().startswith("```"):
            fenced = not fenced
        if not fenced and "][" in line:
            parts = re.split(r"(`+[^`]*`+)", line)
            line = "".join(p if p.startswith("`") else p.replace("][", "]\\[") for p in parts)
        out.append(line)
    return out


def rst_to_markdown(text: str) -> str:
    """The Markdown rendering of one docstring (see the module docstring)."""
    text = _ROLE.sub(_role, text)
    lines = text.split("\n")
    lines = _tables(lines)
    lines = _titles(lines)
    lines = _lists(lines)
    lines = _literal_blocks(lines)
    lines = _no_reference_links(lines)
    return "\n".join(lines)


def _comment_above(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` comment block directly above line ``lineno`` (1-based), if any (Sphinx convention)."""
    block = []
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#:"):
        block.insert(0, lines[i].strip()[2:].strip())
        i -= 1
    return " ".join(block) or None


def _trailing_comment(source: str) -> str | None:
    """The comment at the end of the first line of ``source`` (an attribute's assignment), if any."""
    first = source.split("\n")[0]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(first + "\n").readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    comments = [t.string for t in tokens if t.type == tokenize.COMMENT]
    if not comments:
        return None
    text = comments[-1].lstrip("#").strip()
    if not text or text.startswith(("noqa", "type:", "pragma")):
        return None
    return text


#: validation hooks of dataclasses/Equinox modules: not part of the API
_HIDDEN_MEMBERS = ("__check_init__", "__post_init__")


class RstDocstrings(griffe.Extension):
    """Rewrite every docstring once the object tree is complete; hide validation hooks."""

    def on_class_members(self, *, cls, **kwargs) -> None:  # noqa: D102
        for name in _HIDDEN_MEMBERS:
            if name in cls.members:
                cls.del_member(name)

    def on_object(self, *, obj, **kwargs) -> None:  # noqa: D102
        if obj.docstring is None and obj.is_attribute and obj.parent is not None and obj.lineno:
            try:
                comment = _comment_above(obj.parent.lines_collection[obj.filepath], obj.lineno) \
                    or _trailing_comment(obj.source)
            except (ValueError, OSError, KeyError, AttributeError, TypeError):
                comment = None
            if comment:
                obj.docstring = griffe.Docstring(comment, lineno=obj.lineno, endlineno=obj.lineno, parent=obj)
        if obj.docstring is not None and not getattr(obj.docstring, "_sf_converted", False):
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
            obj.docstring._sf_converted = True
