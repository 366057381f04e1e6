"""Render executed notebooks to standalone HTML for the report: images embedded, no scripts from the network."""

from __future__ import annotations

import os
import re

import nbformat
from nbconvert import HTMLExporter

from .atomic import atomic_path


def to_html(notebook: str | os.PathLike, html: str | os.PathLike) -> None:
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    # No MathJax or require.js from a CDN: the report must open offline.
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    body = re.sub(r'<script src="">\s*</script>', "", body)  # the emptied MathJax and require.js loaders
    body = re.sub(r'<script type="module">.*?</script>', "", body, flags=re.S)  # Mermaid from a CDN; no diagrams here
    with atomic_path(html) as tmp:
        tmp.write_text(body, encoding="utf-8")
