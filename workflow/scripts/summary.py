"""Stack every model's tables of every running task kind across models, draw their figures against embedding
dimension, write the landing page. What to stack and show comes from the table of task kinds (tasks/kinds.py);
the files come in one JSON plan written by the summary rule."""

import argparse
import json
from pathlib import Path

import yaml

from astroclip_eval.io.atomic import atomic_path, save_figure, write_csv
from astroclip_eval.io.cli import run
from astroclip_eval.io.files import read_labels
from astroclip_eval.report import plotting
from astroclip_eval.report.overview import reference_section, render, shared_section, table_section, versions
from astroclip_eval.report.summary import combine
from astroclip_eval.tasks.kinds import enabled, tables


def _json(path: str) -> dict:
    return json.loads(Path(path).read_text())


def main(args: argparse.Namespace) -> None:
    plan = json.loads(args.plan)
    models, config = plan["models"], _json(plan["config"])
    embedded = {m: _json(e) for m, e in zip(models, plan["embeddings"])}
    dims = {m: int(e["dim"]) for m, e in embedded.items()}
    frames, sections = {}, []
    for table in tables(config):
        files = plan["tables"][table.name]
        # read as labels are, so a label named NA stays NA
        frame = frames[table.name] = combine({m: read_labels(p) for m, p in zip(models, files["inputs"])}, dims)
        write_csv(files["output"], frame)
        if table.figure:
            draw = getattr(plotting, table.figure)
            fig = draw(frame) if len(frame) else plotting.empty_figure(f"no rows in {table.name}")
            save_figure(files["figure"], fig, bbox_inches="tight")
        sections.append(table_section(table, frame, files.get("figure")))
    references = reference_section(config, frames)
    sections += [references] if references else []
    sections += [shared_section(function, _json(plan["shared"][key]))
                 for kind in enabled(config) for key, (_, _, function) in kind.shared.items()]
    checkpoints = {m: _json(c) for m, c in zip(models, plan["checkpoints"])}
    page = render(config, _json(plan["valid"]), checkpoints, embedded, sections, versions(),
                  schema=yaml.safe_load(Path(plan["schema"]).read_text()))
    with atomic_path(plan["overview"]) as tmp:
        tmp.write_text(page, encoding="utf-8")


parser = argparse.ArgumentParser(prog="summary", description=__doc__)
parser.add_argument("--plan", required=True, help="JSON: models; per table its per-model inputs, output and figure; "
                    "shared files; embeddings.json and astroclip_model.json per model; valid_summary.json; config.json "
                    "(the config as validated); the schema; the overview's path")
run(main, parser)
