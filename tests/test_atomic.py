"""Outputs appear whole or not at all, and scripts turn bad input into one line and exit 1."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from astroclip_eval.io.atomic import atomic_path, write_json
from astroclip_eval.io.errors import UserError


def test_failed_write_leaves_nothing(tmp_path):
    dest = tmp_path / "out" / "embeddings.pt"
    with pytest.raises(UserError, match=f"^no space left on device while writing {dest}$"):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(28, "No space left on device")  # what a full disk raises mid-write
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    with pytest.raises(PermissionError):  # any other error passes as it is
        with atomic_path(dest) as tmp:
            raise PermissionError(13, "Permission denied")
    assert list(dest.parent.iterdir()) == []


def test_success_replaces_and_keeps_permissions(tmp_path):
    dest = tmp_path / "summary.json"
    write_json(dest, {"a": 1})
    write_json(dest, {"a": 2})
    assert dest.read_text().strip().endswith("}") and '"a": 2' in dest.read_text()
    assert dest.stat().st_mode & 0o044  # readable by group/others like any other output, not 0600
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_script_error_is_one_line(tmp_path):
    bad = tmp_path / "astroclip_model.ckpt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "0-of-1.pt"
    run = subprocess.run(
        [sys.executable, str(ROOT / "workflow/scripts/embed.py"), "--checkpoint", str(bad), "--dataset", "x.h5",
         "--device", "cpu", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and str(bad) in errors[0] and "unreadable checkpoint" in errors[0]
    assert "Traceback" not in run.stderr and not out.exists()


def test_notebook_html_loads_nothing_from_the_network(tmp_path):
    import re

    import nbformat

    from astroclip_eval.io.notebooks import to_html

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title with $z$"), nbformat.v4.new_code_cell("1 + 1")]
    nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, src)
    to_html(src, tmp_path / "nb.html")
    html = (tmp_path / "nb.html").read_text()
    assert "Title with" in html and ">2<" in html.replace("\n", "")
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)
    assert "import(\"http" not in html and '<script src="">' not in html


def test_a_failing_notebook_cell_is_one_line_and_leaves_no_output(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("mode = 'ok'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "from astroclip_eval.io.errors import UserError\n"
            "if mode == 'user':\n    raise UserError('similarity.query_indices: row 2 is not a valid row')\n"
            "result = 1 / (mode != 'crash')"
        ),
    ]
    notebook = tmp_path / "story.ipynb"
    nbformat.write(nb, notebook)
    script = ROOT / "workflow/scripts/run_notebook.py"

    def run_with(mode: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
        out, failed = tmp_path / f"{mode}.ipynb", tmp_path / "logs" / f"{mode}.failed.ipynb"
        proc = subprocess.run(
            [sys.executable, str(script), str(notebook), str(out), "--plan", json.dumps({"mode": mode}),
             "--failed-copy", str(failed)],
            capture_output=True, text=True, timeout=300, cwd=ROOT,
        )
        return proc, out, failed

    ok, out, failed = run_with("ok")
    assert ok.returncode == 0, ok.stderr
    assert "mode = \"ok\"" in "".join(c.source for c in nbformat.read(out, as_version=4).cells)
    assert not failed.exists()
    for mode, fragment in (
        ("user", "similarity.query_indices: row 2 is not a valid row"),
        ("crash", "raised ZeroDivisionError: division by zero"),
    ):
        bad, out, failed = run_with(mode)
        errors = [line for line in bad.stderr.splitlines() if "ERROR" in line]
        assert bad.returncode == 1 and len(errors) == 1 and fragment in errors[0], bad.stderr
        assert str(failed) in errors[0] and "Traceback" not in bad.stderr
        assert not out.exists() and not list(tmp_path.glob(".*running*"))
        assert "ZeroDivisionError" in failed.read_text() or "UserError" in failed.read_text()


def test_notebook_kernel_talks_over_private_unix_sockets(tmp_path):
    """Two notebook jobs starting together on one node cannot take each other's TCP ports: the kernel is reached over
    unix sockets in a directory of the job's own, which is gone afterwards."""
    import nbformat

    from astroclip_eval.io.notebooks import execute

    seen_file = tmp_path / "seen.json"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import json, os\nimport ipykernel.connect\n"
        "connection = ipykernel.connect.get_connection_file()\n"
        "seen = {'file': connection, 'info': json.load(open(connection)), 'sockets': os.listdir(os.path.dirname(connection))}\n"
        f"json.dump(seen, open({str(seen_file)!r}, 'w'))"
    )]
    probe, out = tmp_path / "probe.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, probe)
    execute(probe, out, {}, tmp_path / "failed.ipynb")
    seen = json.loads(seen_file.read_text())
    private = Path(seen["file"]).parent
    assert private.name.startswith("astroclip-kernel-") and seen["info"]["transport"] == "ipc"
    assert seen["info"]["ip"] == str(private / "kernel")
    assert {"kernel.json", f"kernel-{seen['info']['shell_port']}"} <= set(seen["sockets"])
    assert out.exists() and not private.exists()
