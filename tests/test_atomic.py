"""Outputs appear whole or not at all, and scripts turn bad input into one line and exit 1."""

import subprocess
import sys

import pytest

from astroclip_eval.atomic import atomic_path, write_json
from conftest import ROOT


def test_failed_write_leaves_nothing(tmp_path):
    dest = tmp_path / "out" / "embeddings.pt"
    with pytest.raises(OSError):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(28, "No space left on device")  # what a full disk raises mid-write
    assert not dest.exists() and list(dest.parent.iterdir()) == []


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
    out = tmp_path / "image.pt"
    run = subprocess.run(
        [sys.executable, str(ROOT / "workflow/scripts/embed.py"), "--checkpoint", str(bad), "--dataset", "x.h5",
         "--device", "cpu", "--image-out", str(out), "--spectrum-out", str(tmp_path / "spectrum.pt")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and str(bad) in errors[0] and "unreadable checkpoint" in errors[0]
    assert "Traceback" not in run.stderr and not out.exists()


def test_notebook_html_loads_nothing_from_the_network(tmp_path):
    import re

    import nbformat

    from astroclip_eval.notebooks import to_html

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


def test_invalid_query_stops_before_the_notebook(tmp_path):
    import json

    import torch

    torch.save(torch.tensor([0, 1, 3], dtype=torch.int64), tmp_path / "valid.pt")
    (tmp_path / "summary.json").write_text(json.dumps({"n_rows": 5}))
    base = [sys.executable, str(ROOT / "workflow/scripts/check_queries.py"), "--valid", str(tmp_path / "valid.pt"),
            "--summary", str(tmp_path / "summary.json"), "--queries"]
    ok = subprocess.run([*base, "[0, 3]"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    for queries, fragment in (("[2]", "row 2 is not a valid row"), ("[7]", "7 is outside the validation set of 5 rows")):
        bad = subprocess.run([*base, queries], capture_output=True, text=True, timeout=120)
        errors = [line for line in bad.stderr.splitlines() if "ERROR" in line]
        assert bad.returncode == 1 and len(errors) == 1 and fragment in errors[0] and "similarity.query_indices" in errors[0]
