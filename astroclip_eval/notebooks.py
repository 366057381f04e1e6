"""Render executed notebooks to standalone HTML for the report: images embedded, no scripts from the network."""

from __future__ import annotations

import os

import nbformat
from nbconvert import HTMLExporter

from .atomic import atomic_path


def to_html(notebook: str | os.PathLike, html: str | os.PathLike) -> None:
    exporter = HTMLExporter(template_name="classic", embed_images=True)
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    # No MathJax or require.js from a CDN: the report must open offline.
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    with atomic_path(html) as tmp:
        tmp.write_text(body, encoding="utf-8")
