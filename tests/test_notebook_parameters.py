"""Each notebook's parameters cell against what its rule passes: the same names, none missing and none extra, so a
notebook never runs on a default of its own that the config cannot reach (the defaults live in the schema)."""

import ast
import json
import shlex

import nbformat
from conftest import ROOT, snakemake

NOTEBOOKS = sorted((ROOT / "workflow/notebooks").glob("*.ipynb"))


def parameters_cell(path) -> set[str]:
    """The names the notebook's cell tagged `parameters` assigns."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged parameters"
    body = ast.parse(cells[0].source).body
    return {t.id for node in body for t in (node.targets if isinstance(node, ast.Assign) else [node.target])}


def test_every_notebook_rule_passes_exactly_its_notebooks_parameters(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text((ROOT / "config/config.yaml").read_text())  # every kind turned on
    run = snakemake(tmp_path, "-n", "-p", cores=1)
    assert run.returncode == 0, run.stderr[-3000:]
    plans: dict[str, set[str]] = {}
    for line in run.stdout.splitlines():
        if "run_notebook.py" in line:
            words = shlex.split(line.split("Shell command:", 1)[-1])
            notebook = words[words.index(next(w for w in words if w.endswith("run_notebook.py"))) + 1]
            plans.setdefault(notebook.rsplit("/", 1)[-1], set()).update(json.loads(words[words.index("--plan") + 1]))
    assert sorted(plans) == [p.name for p in NOTEBOOKS]  # every notebook is planned by the demo
    for path in NOTEBOOKS:
        cell = parameters_cell(path)
        assert plans[path.name] == cell, (path.name, "passed, not in the cell:", plans[path.name] - cell,
                                          "in the cell, not passed:", cell - plans[path.name])
