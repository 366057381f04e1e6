"""The package's shape: a checkpoint's way from promotion to embeddings only goes down (no file calls back into one
above it), and the crop, the model registry and the config's validation each exist once."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from conftest import ROOT, write_groups

from astroclip_eval.checkpoints import promote
from astroclip_eval.embed import embed_split
from astroclip_eval.io.data import Survey
from astroclip_eval.models import load
from astroclip_eval.models.reference import ReferenceAstroCLIP
from astroclip_eval.tasks.kinds import KINDS

PACKAGE = ROOT / "astroclip_eval"


def _file_calls(run) -> list[tuple[str, str]]:
    """(caller file, callee file) for every call from one package file into another while `run()` runs."""
    edges = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_back is not None:
            callee, caller = frame.f_code.co_filename, frame.f_back.f_code.co_filename
            if callee != caller and str(PACKAGE) in callee and str(PACKAGE) in caller:
                edges.append((str(Path(caller).relative_to(PACKAGE)), str(Path(callee).relative_to(PACKAGE))))

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return edges


def test_a_checkpoint_goes_down_from_promotion_to_embeddings(tmp_path):
    model = ReferenceAstroCLIP(embedding_dim=8)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monitor = {"ModelCheckpoint{'monitor': 'val/loss', 'mode': 'min'}": {"monitor": "val/loss",
                                                                          "current_score": torch.tensor(0.5)}}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.settings), "epoch": 3,
                "callbacks": monitor, "pytorch-lightning_version": pl.__version__}, run_dir / "astroclip-epoch=3-min.ckpt")
    path = tmp_path / "survey.h5"
    write_groups(path, [20, 20], image_size=64)

    def run():
        promote(run_dir, tmp_path / "cache/m.ckpt", tmp_path / "cache/m.json")
        embedder = load("auto", str(tmp_path / "cache/m.ckpt"), torch.device("cpu"), {})
        with Survey(path) as survey:
            images, spectra = embed_split(embedder, survey, "valid", 4, torch.device("cpu"), progress=False)
        assert images.shape == spectra.shape == (8, 8) and np.isfinite(images.numpy()).all()

    edges = set(_file_calls(run))
    files = {f for edge in edges for f in edge}
    assert {"checkpoints.py", "models/__init__.py", "models/reference.py", "io/crop.py", "embed.py"} <= files
    # Layered: order the files so that every call goes from an earlier file to a later one; a cycle would leave some.
    order, left = [], set(files)
    while left:
        top = sorted(f for f in left if not any(a in left and b == f for a, b in edges))
        assert top, f"files calling back into each other: {sorted(left)} ({sorted(e for e in edges if set(e) <= left)})"
        order += top
        left -= set(top)
    assert order.index("checkpoints.py") < order.index("models/__init__.py") < order.index("models/reference.py")
    assert order.index("models/reference.py") < order.index("io/crop.py")


def _definitions(pattern: str) -> list[str]:
    return [f"{p.relative_to(ROOT)}:{i + 1}" for p in sorted(ROOT.glob("astroclip_eval/**/*.py"))
            for i, line in enumerate(p.read_text().splitlines()) if re.search(pattern, line)]


def test_one_crop_one_registry_one_validation():
    assert [d.split(":")[0] for d in _definitions(r"^def (centre_crop|crop_origin)\b")] == ["astroclip_eval/io/crop.py"] * 2
    margins = _definitions(r"\(\w+ - \w+\) // 2|round\(\(\w+ - \w+\) / 2\)")  # a crop margin computed
    assert {m.split(":")[0] for m in margins} == {"astroclip_eval/io/crop.py"}  # only there (its code and docstring)
    assert [d.split(":")[0] for d in _definitions(r"^REGISTRY = ")] == ["astroclip_eval/models/__init__.py"]
    uses = _definitions(r"\.iter_errors\(|snakemake\.utils import .*validate|\bvalidate\(config")
    assert [u.split(":")[0] for u in uses] == ["astroclip_eval/io/config.py"]
    snakefiles = [ROOT / "Snakefile", *ROOT.glob("workflow/rules/*.smk")]
    assert not [f for f in snakefiles if re.search(r"\bvalidate\(", f.read_text())]
    assert (ROOT / "Snakefile").read_text().count("check_config(") == 1


def test_the_summary_and_the_overview_name_no_task():
    """Every task kind reaches the default target, the summary, the report's Summary items and the overview through
    the table of kinds: no quoted kind, rule, table or section name and no `rules.<task rule>` in those files, and
    each kind's rule file is included by its name, so a new kind is its module, notebook, rule file and entry."""
    names = {n for kind in KINDS for n in (kind.name, kind.rule, *kind.settings, *kind.shared,
                                            *[x for t in kind.tables for x in (t.name, t.anchor, t.caption)])}
    names |= {r for kind in KINDS for r, _, _ in kind.shared.values()}
    files = ["workflow/scripts/summary.py", "workflow/rules/summary.smk", "workflow/rules/notebooks.smk",
             "astroclip_eval/report/overview.py", "astroclip_eval/report/summary.py",
             "astroclip_eval/templates/overview.html.j2"]
    found = []
    for name in files:
        text = (ROOT / name).read_text()
        found += [(name, m.group(0)) for m in re.finditer(r"""["']([\w./-]+)["']|\brules\.(\w+)""", text)
                  if (m.group(1) or m.group(2)) in names]
    assert not found
    common = (ROOT / "workflow/rules/common.smk").read_text()
    assert not [r for r in re.findall(r"\brules\.(\w+)", common) if r in names]  # all_outputs reads the table
    included = re.findall(r'include: "workflow/rules/(\w+)\.smk"', (ROOT / "Snakefile").read_text())
    assert not set(included) & {kind.name for kind in KINDS}  # included by the loop over the table
    assert {kind.name for kind in KINDS} <= {f.stem for f in (ROOT / "workflow/rules").glob("*.smk")}
    assert {kind.name for kind in KINDS if kind.notebook} == {f.stem for f in (ROOT / "workflow/notebooks").glob("*.ipynb")}


def _imports(path: Path) -> set[str]:
    """The astroclip_eval modules a file imports, at the top or inside a function."""
    found = re.findall(r"^\s*(?:from|import) (astroclip_eval[\w.]*)", path.read_text(), re.M)
    return set(found)


def test_tasks_import_no_report_io_no_task_and_the_demo_has_no_circle():
    """Imports go down: a task draws with `astroclip_eval.style`, never the report above it; `io/` (the config check
    included) imports no task; the demo's survey and catalogues share `demo.universe` instead of importing each other."""
    for path in sorted((PACKAGE / "tasks").glob("*.py")):
        assert not {m for m in _imports(path) if m.startswith("astroclip_eval.report")}, path.name
    for path in sorted((PACKAGE / "io").glob("*.py")):
        assert not {m for m in _imports(path) if m.startswith(("astroclip_eval.tasks", "astroclip_eval.report"))}, path.name
    assert "astroclip_eval.demo.simulate" not in _imports(PACKAGE / "demo/catalogues.py")
