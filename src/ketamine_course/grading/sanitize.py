"""Make student-controlled notebook content inert before any page shows it.

Everything a submission holds is hostile input: outputs (HTML, Markdown, SVG,
JavaScript, widget state), Markdown and raw cells, attachments and metadata.
:func:`sanitize_notebook` rewrites a graded notebook so that nothing in it can
run script or fetch anything when nbconvert, nbgrader's formgrader or
JupyterLab renders it:

* HTML is cleaned by nh3 (the Ammonia sanitizer) with an allow-list of tags
  and attributes; links keep only ``http``, ``https`` and ``mailto`` targets
  and images only inline raster ``data:`` URIs (no request leaves the page);
* Markdown (cells and outputs) is rendered to HTML with nbconvert's own
  renderer, attachments inlined, then cleaned the same way, and the cell keeps
  the clean HTML (Markdown may hold raw HTML, so the clean HTML renders the
  same in every viewer);
* outputs keep only plain text, PNG/JPEG images and clean HTML; everything
  else (JavaScript, SVG, LaTeX, JSON, widget views, output metadata such as
  ``isolated``) is replaced by a line saying what was removed;
* raw cells become escaped text; notebook and cell metadata keep only what
  grading needs.

:func:`math_to_mathml` turns ``$...$`` and ``$$...$$`` in clean HTML into
MathML at generation time, so feedback pages show mathematics with no script
and no network (nothing like MathJax is loaded). :data:`CONTENT_SECURITY_POLICY`
is the policy every page the course generates carries.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from typing import Any

import nh3
from nbformat import NotebookNode, v4

from .hidden import DETAIL as JUDGE_DETAIL

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "clean_html",
    "markdown_to_html",
    "math_to_mathml",
    "sanitize_notebook",
    "inert_for_markdown",
    "without_mathjax",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
"""No script of any kind, no request: only inline styles and inline images."""

_RASTER = ("image/png", "image/jpeg", "image/gif", "image/webp")
_MATHML_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac", "msqrt",
    "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom", "menclose",
    "semantics", "annotation",
}
_MATHML_ATTRIBUTES = {
    "display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "accent", "accentunder",
    "columnalign", "linethickness", "displaystyle", "scriptlevel", "width", "minsize", "maxsize", "movablelimits",
    "form", "notation", "encoding",
}
_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_ATTRIBUTES: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES["*"] = {"title", "lang", "dir"}


def _safe_data_image(value: str) -> bool:
    match = re.fullmatch(r"data:(image/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=\s]*)", value)
    return match is not None


def _attribute_filter(element: str, attribute: str, value: str) -> str | None:
    if attribute == "src":
        return value if _safe_data_image(value) else None
    if attribute in ("href", "cite"):
        return value if re.match(r"(?i)(https?:|mailto:|#)", value.strip()) else None
    return value


_TEX_ACTIVE = re.compile(
    r"\\(href|url|class|cssId|style|html|unicode|require|data|mmlToken|toggle|action|tooltip)(?![A-Za-z])"
)


def _neutralise_tex(text: str) -> str:
    """TeX commands with which a page's MathJax would make links, styles or elements (``\\href{javascript:...}``)
    shown as words."""
    return _TEX_ACTIVE.sub(lambda m: f"\\text{{{m.group(1)}}}", text)


def clean_html(markup: str, *, mathml: bool = False) -> str:
    """HTML reduced to an allow-list of tags and attributes (optionally MathML too): nothing active survives.

    TeX commands that MathJax would turn into links or markup are neutralised too,
    since a viewer that loads MathJax (nbgrader's formgrader) typesets text it finds.
    """
    markup = _neutralise_tex(markup)
    tags = _TAGS | _MATHML_TAGS if mathml else _TAGS
    attributes = dict(_ATTRIBUTES)
    if mathml:
        attributes.update({tag: _MATHML_ATTRIBUTES for tag in _MATHML_TAGS})
    return _neutralise_tex(nh3.clean(  # again after cleaning: entities such as &#x5c; become backslashes there
        markup,
        tags=tags,
        attributes=attributes,
        url_schemes={"http", "https", "mailto", "data"},
        attribute_filter=_attribute_filter,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ))


def _valid_base64(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_MARKDOWN_ACTIVE = re.compile(r"[\[\]()*_`!#~|<>:\\]")
_TAG = re.compile(r"(<[^>]*>)")


def inert_for_markdown(markup: str) -> str:
    """Clean HTML whose text can never become Markdown again: every character Markdown gives meaning to, as an entity.

    A graded notebook's Markdown cell holds clean HTML, and every viewer
    (the formgrader, nbconvert, JupyterLab) renders that cell as Markdown once
    more. Text that came through cleaning as text (``[x](javascript:...)``
    left beside an element the cleaner removed) would become a link then;
    as entities (``&#91;x&#93;&#40;javascript&#58;...``) it stays text in
    every renderer, and shows the same.
    """
    parts = _TAG.split(markup)
    for index in range(0, len(parts), 2):  # text between tags (tags are the odd items)
        parts[index] = _MARKDOWN_ACTIVE.sub(_entity, parts[index])
    for index in range(1, len(parts), 2):
        # attribute values too, line breaks included: a viewer that reads a tag split by a blank line as
        # text would otherwise find Markdown in it (``title="a<blank line>[x](javascript:...)"``)
        parts[index] = _ATTRIBUTE.sub(
            lambda m: m.group(1) + _ATTRIBUTE_ACTIVE.sub(_entity, m.group(2)) + m.group(3), parts[index]
        )
    return "".join(parts)


_ATTRIBUTE = re.compile(r"""(=\s*")([^"]*)(")""")
_ATTRIBUTE_ACTIVE = re.compile(r"[\[\]()*_`!#~|<>:\\\r\n]")


def _entity(match: re.Match[str]) -> str:
    return f"&#{ord(match.group(0))};"


def without_mathjax(markup: str) -> str:
    """Clean HTML in a container MathJax (versions 2 and 3) leaves alone.

    The formgrader typesets a page's TeX with MathJax, which reads the
    page's text, not its markup: ``$\\hr<wbr>ef{javascript:...}{x}$`` is
    ``\\href`` to it, whatever entities or tags the text holds, and only
    MathJax's optional ``Safe`` extension would keep the link from being
    made. Student content never needs MathJax (feedback pages show its
    mathematics as MathML), so it is kept out of its reach.
    """
    return f'<div class="tex2jax_ignore">{markup}</div>'


def markdown_to_html(source: str, attachments: dict[str, Any] | None = None) -> str:
    """Markdown rendered as nbconvert renders it (mathematics kept as text), attachments inlined, then cleaned."""
    from nbconvert.filters.markdown_mistune import InvalidNotebook, IPythonRenderer, MarkdownWithMath

    safe_attachments = {}
    for name, bundle in (attachments or {}).items():
        if isinstance(bundle, dict):
            images = {mime: data for mime, data in bundle.items() if mime in _RASTER and _valid_base64(data)}
            if images:
                safe_attachments[str(name)] = images
    source = _neutralise_tex(source)
    source = re.sub(
        r"attachment:([^)\s\"'>]+)",
        lambda m: m.group(0) if m.group(1) in safe_attachments else "#removed-attachment",
        source,
    )
    try:
        rendered = MarkdownWithMath(
            renderer=IPythonRenderer(escape=False, attachments=safe_attachments, exclude_anchor_links=True)
        ).render(source)
    except (InvalidNotebook, RecursionError, ValueError):  # a missing attachment, absurd nesting: show the text
        rendered = f"<pre>{html.escape(source)}</pre>"
    return clean_html(rendered)


_OUTPUT_NOTE = "[{} output removed by the grader: only text, images and plain HTML are shown]"


def _sanitize_output(output: NotebookNode) -> NotebookNode:
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text", "")
        return v4.new_output(
            "stream", name="stderr" if output.get("name") == "stderr" else "stdout",
            text=text if isinstance(text, str) else "",
        )
    if kind == "error":
        traceback = [line for line in output.get("traceback", []) if isinstance(line, str)]
        return v4.new_output(
            "error", ename=str(output.get("ename", "")), evalue=str(output.get("evalue", "")), traceback=traceback
        )
    data = output.get("data", {}) if isinstance(output.get("data"), dict) else {}
    clean: dict[str, Any] = {}
    if isinstance(data.get("text/plain"), str):
        clean["text/plain"] = data["text/plain"]
    for mime in ("image/png", "image/jpeg"):
        if _valid_base64(data.get(mime)):
            clean[mime] = data[mime]
    if isinstance(data.get("text/html"), str):
        clean["text/html"] = without_mathjax(inert_for_markdown(clean_html(data["text/html"])))
    elif isinstance(data.get("text/markdown"), str):
        clean["text/html"] = without_mathjax(inert_for_markdown(markdown_to_html(data["text/markdown"])))
    removed = sorted(set(data) - set(clean) - {"text/markdown"})
    if removed and "text/plain" not in clean and not (set(clean) & {"image/png", "image/jpeg", "text/html"}):
        clean["text/plain"] = _OUTPUT_NOTE.format(", ".join(m[:60] for m in removed[:3]))
    if kind == "execute_result":
        count = output.get("execution_count")
        return v4.new_output("execute_result", data=clean, execution_count=count if type(count) is int else None)
    return v4.new_output("display_data", data=clean)


def sanitize_notebook(nb: NotebookNode, trusted: dict[str, str] | None = None) -> NotebookNode:
    """Rewrite a notebook in place so that no viewer can run or fetch anything from it; returns it.

    ``trusted`` maps nbgrader cell ids to the instructor's source of that cell
    (the gradebook's copy): a Markdown cell that still holds exactly that text
    is the instructor's own and is kept as written.
    """
    kernelspec = nb.metadata.get("kernelspec", {})
    language = nb.metadata.get("language_info", {})
    nb.metadata = v4.new_notebook().metadata
    if (
        isinstance(kernelspec, dict) and isinstance(kernelspec.get("name"), str)
        and isinstance(kernelspec.get("display_name"), str)
    ):
        nb.metadata["kernelspec"] = {
            k: str(v)[:100] for k, v in kernelspec.items() if k in ("name", "display_name", "language")
        }
    if isinstance(language, dict) and isinstance(language.get("name"), str):
        nb.metadata["language_info"] = {"name": language["name"][:100]}
    for cell in nb.cells:
        nbgrader = cell.get("metadata", {}).get("nbgrader")
        judged = cell.get("metadata", {}).get("ketamine_course", {})
        detail = judged.get(JUDGE_DETAIL) if isinstance(judged, dict) else None
        cell.metadata = {"nbgrader": nbgrader} if isinstance(nbgrader, dict) else {}
        if isinstance(detail, str) and isinstance(nbgrader, dict) and nbgrader.get("grade"):
            cell.metadata["ketamine_course"] = {JUDGE_DETAIL: detail[:2000]}  # the judge's, for the instructor: text
        grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
        if (
            cell.cell_type == "markdown" and trusted and grade_id in trusted and cell.source == trusted[grade_id]
            and not cell.get("attachments")
        ):
            continue
        if cell.cell_type == "markdown":
            cell.source = without_mathjax(inert_for_markdown(markdown_to_html(cell.source, cell.get("attachments"))))
            cell.pop("attachments", None)
        elif cell.cell_type == "raw":
            cell.source = html.escape(cell.source)
            cell.pop("attachments", None)
        elif cell.cell_type == "code":
            cell.outputs = [_sanitize_output(o) for o in cell.get("outputs", [])]
            if type(cell.get("execution_count")) is not int:
                cell.execution_count = None
    for index, cell in enumerate(nb.cells):  # ids only where the notebook's format has them, and deterministic
        if "id" in cell and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(cell.get("id"))):
            cell.id = f"cell-{index}"
    return nb


_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.S)


def math_to_mathml(markup: str) -> str:
    """``$...$`` and ``$$...$$`` in clean HTML turned into MathML, then the whole cleaned again (MathML allowed)."""
    import latex2mathml.converter

    def convert(match: re.Match[str]) -> str:
        display = match.group(1) is not None
        tex = html.unescape(match.group(1) if display else match.group(2))
        try:
            return str(latex2mathml.converter.convert(tex, display="block" if display else "inline"))
        except Exception:  # TeX that latex2mathml cannot read stays as its text
            return match.group(0)

    return clean_html(_MATH.sub(convert, markup), mathml=True)
