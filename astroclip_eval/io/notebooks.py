"""Execute the parameterised notebooks, and render them to standalone HTML for the report (offline, images embedded)."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

from astroclip_eval.io.atomic import atomic_path
from astroclip_eval.io.errors import UserError

log = logging.getLogger(__name__)
DATA_URL_LIMIT = 2 * 1024 * 1024  # Chromium refuses to navigate (or load a frame) to a longer URL
# Seconds a kernel may take to answer (papermill's default is 60): on a loaded node, or importing from a network file
# system, 60 s is not always enough; a kernel that dies is reported at once, whatever this is.
KERNEL_START_TIMEOUT = 300
# The kernel process's own log goes to the job's stderr, where one failing cell must read as one line. After a cell
# fails, shutting the kernel down interrupts it first, and a kernel caught between messages then logs "KeyboardInterrupt
# caught in kernel" at ERROR (seen in 1 of ~4 loaded test runs): the cell's error already says what went wrong, and a
# kernel that dies is reported by papermill itself, so the kernel app logs only what is critical.
# Tornado's own logger, which the kernel app's level does not reach, logs the same race at shutdown as "Uncaught
# exception in ZMQStream callback" with a traceback (seen in 1 of 2 loaded clean-clone runs, 2026-12-07).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL",
                    "--IPKernelApp.exec_lines=__import__('logging').getLogger('tornado').setLevel(50)"]


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
    if len(body.encode()) * 4 / 3 > DATA_URL_LIMIT:
        log.warning("%s: %.1f MB of HTML; the report shows it through a data URL, which browsers refuse beyond 2 MB",
                    html, len(body.encode()) / 1e6)
    with atomic_path(html) as tmp:
        tmp.write_text(body, encoding="utf-8")


def private_kernel(directory: str) -> Config:
    """Kernel settings that connect over unix sockets in a directory of this job's own.

    Over TCP, jupyter_client picks free ports and hands them to the kernel, which binds them a moment later; a kernel
    starting at that moment on the same node (the other notebook job, another user's) can take one, and the job fails
    before its first cell with ZMQError "Address already in use" (papermill #511, snakemake #3689). Sockets named in
    a private directory cannot collide.
    """
    return Config({"KernelManager": {"transport": "ipc", "connection_file": os.path.join(directory, "kernel.json"),
                                     "ip": os.path.join(directory, "kernel")}})


def execute(
    notebook: str | os.PathLike, output: str | os.PathLike, parameters: dict[str, Any], failed_copy: str | os.PathLike
) -> None:
    """Run a parameterised notebook with papermill; `output` appears only if every cell succeeds.

    A failing cell becomes one line naming the notebook, the cell and the error (a UserError raised inside the
    notebook keeps its own message). The executed notebook, traceback included, is kept at `failed_copy`, outside
    the rule's outputs, so the evidence survives Snakemake's cleanup of a failed job.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output, failed_copy = Path(output), Path(failed_copy)
    running = output.with_name(f".{output.stem}.running.ipynb")  # papermill wants an .ipynb name
    try:
        with tempfile.TemporaryDirectory(prefix="astroclip-kernel-") as sockets:
            papermill.execute_notebook(
                str(notebook),
                str(running),
                parameters=parameters,
                kernel_name="python3",
                language="python",
                cwd=".",
                progress_bar=False,
                start_timeout=KERNEL_START_TIMEOUT,
                extra_arguments=KERNEL_ARGUMENTS,
                config=private_kernel(sockets),
            )
    except PapermillExecutionError as exc:
        failed_copy.parent.mkdir(parents=True, exist_ok=True)
        os.replace(running, failed_copy)
        where = f"{notebook}, cell {exc.exec_count}"
        if exc.ename == "UserError":
            raise UserError(f"{exc.evalue} ({where}; executed notebook: {failed_copy})") from None
        raise UserError(f"{where} raised {exc.ename}: {exc.evalue} (traceback in {failed_copy})") from None
    except BaseException:  # a dead kernel or an interrupt: leave nothing half-written
        running.unlink(missing_ok=True)
        raise
    os.replace(running, output)
