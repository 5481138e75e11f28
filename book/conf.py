"""Sphinx configuration of the course's static site (``./course site``; see ketamine_course.site).

The pages are notebooks staged and executed by ``ketamine_course.site`` into
``build/site-src/``; this file only says how to render them. Nothing may be
loaded from outside the site at view time: no widget JavaScript from a CDN
(the executed widgets show their still picture), and maths converted to
MathML at build time instead of MathJax.
"""

from __future__ import annotations

from typing import Any

project = "Ketamine: an interactive pharmacology course"
author = "The ketamine course authors"
copyright = "the ketamine course authors; prose CC BY 4.0, code MIT"
language = "en"

extensions = ["myst_nb"]
root_doc = "notebooks/00_start_here"
exclude_patterns = ["**/.ipynb_checkpoints"]

# Notebooks arrive executed (lessons) or are shown unexecuted (quizzes): MyST-NB never runs a kernel.
nb_execution_mode = "off"
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
# Markdown printed by cells (the course map, fact boxes) is MyST too, so its links to other notebooks resolve.
nb_render_markdown_format = "myst"

html_theme = "sphinx_book_theme"
html_title = "Ketamine: an interactive pharmacology course"
html_math_renderer = "mathml"
html_copy_source = False
html_show_sourcelink = False
# The search page would fetch each result page for a summary, which a browser refuses for pages opened from disk.
html_show_search_summary = False
html_static_path = ["_static"]
html_css_files = ["course.css"]
# A mode of its own, so the theme never logs "invalid theme mode" on a first visit.
html_context = {"default_mode": "light"}
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "navigation_with_keys": False,
    "show_navbar_depth": 1,
}


def _mathml(latex: str, display: str) -> str:
    from latex2mathml.converter import convert

    return convert(latex, display=display)


def _visit_inline_math(self: Any, node: Any) -> None:
    from docutils import nodes

    self.body.append(_mathml(node.astext(), "inline"))
    raise nodes.SkipNode


def _visit_display_math(self: Any, node: Any) -> None:
    from docutils import nodes

    self.body.append(f'<div class="math notranslate">{_mathml(node.astext(), "block")}</div>\n')
    raise nodes.SkipNode


def setup(app: Any) -> None:
    """Render maths as MathML at build time (latex2mathml): the pages need no script to show it."""
    app.add_html_math_renderer("mathml", (_visit_inline_math, None), (_visit_display_math, None))
