"""A Markdown document as one self-contained HTML file: images embedded, no external reference.

The run report (:mod:`ssh_ood.commands.reproduce`) is written as Markdown with images linked relative to its folder;
:func:`markdown_to_html` converts it (Python-Markdown, tables and fenced code) and replaces every image by a
base64 ``data:`` URI, so the file opens offline, can be mailed, and needs neither the figures folder nor a
network (no CDN: the style sheet is inline).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from urllib.parse import unquote

import markdown

MIME_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
              ".gif": "image/gif"}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: #1b1b1b;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { font-size: 1.35rem; margin-top: 2.2rem; border-bottom: 1px solid #eee; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
th, td { border: 1px solid #bbb; padding: .3rem .6rem; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
td:nth-child(2) { white-space: nowrap; }
img { max-width: 100%; height: auto; display: block; margin: 1rem auto .3rem; }
p:has(> img) + p { font-size: .92rem; color: #444; margin-top: 0; }
code { background: #f3f3f3; padding: 0 .2rem; border-radius: 3px; font-size: .9em; }
pre { background: #f6f6f6; padding: .7rem; overflow-x: auto; font-size: .85rem; }
pre code { background: none; padding: 0; }
"""
_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')


def data_uri(path: str | Path) -> str:
    """The file as a ``data:`` URI (base64), its MIME type from the extension (:data:`MIME_TYPES`)."""
    path = Path(path)
    mime = MIME_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"{path}: no known image type for {path.suffix!r}; known: {sorted(MIME_TYPES)}")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def embed_images(document: str, base_dir: str | Path) -> str:
    """Replace the ``src`` of every ``<img>`` by the data URI of the file it names relative to ``base_dir``.

    Raises
    ------
    FileNotFoundError
        if an image file does not exist (an HTML meant to stand alone must not point outside itself).
    """
    def replace(match: re.Match) -> str:
        source = html.unescape(match.group(2))
        if source.startswith("data:"):
            return match.group(0)
        path = Path(base_dir) / unquote(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image of the document not found; it cannot be embedded")
        return match.group(1) + data_uri(path) + match.group(3)

    return _IMG_SRC.sub(replace, document)


def markdown_to_html(text: str, base_dir: str | Path, title: str) -> str:
    """A complete HTML page of the Markdown ``text``, images (relative to ``base_dir``) embedded.

    Parameters
    ----------
    text : Markdown (with pipe tables and fenced code blocks).
    base_dir : folder the Markdown's relative image paths start from (the Markdown file's folder).
    title : the page title.
    """
    body = markdown.markdown(text, extensions=["tables", "fenced_code"], output_format="html")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"{embed_images(body, base_dir)}\n</body>\n</html>\n")
