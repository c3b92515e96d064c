"""Sphinx configuration of the documentation site (built by ``make docs``, i.e. ``python docs/build.py``).

``docs/build.py`` stages this folder with the executed notebooks and the API pages into one source folder and
runs Sphinx on it; see ``docs_site.md``. Everything the pages load is local: MathJax comes from the
``sphinx-mathjax-offline`` package, the notebook widgets' JavaScript (a CDN by default) is left out.
"""

project = "ssh-ood"
author = "the ssh-ood contributors"
copyright = "2026, the ssh-ood contributors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static/mathjax: no CDN
]

exclude_patterns = ["_build", "build.py", "Thumbs.db", ".DS_Store"]
suppress_warnings = ["myst.header"]

# Markdown pages: $...$ and $$...$$ math, (label)= targets
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# notebooks: shown as executed by `make reproduce` (never run here); no widget JavaScript from a CDN
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_merge_streams = True

# API reference from the numpy-style docstrings
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

html_theme = "alabaster"
html_title = "ssh-ood: out-of-distribution generalization on the disordered SSH model"
html_theme_options = {"page_width": "1180px", "sidebar_width": "240px", "font_family": "sans-serif",
                      "head_font_family": "sans-serif"}
html_show_sourcelink = False


def _literal_bars(app, what, name, obj, options, lines) -> None:
    """Keep the docstrings' plain-text formulas: ``|x|`` is an absolute value, not a reStructuredText
    substitution, so every ``|`` outside an inline literal is escaped."""
    for index, line in enumerate(lines):
        parts = line.split("``")
        lines[index] = "``".join(part if odd else part.replace("|", "\\|") for odd, part in
                                 ((i % 2 == 1, part) for i, part in enumerate(parts)))


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _literal_bars)
