"""Stack every model's tables of every running task kind across models from their results files, build the
scoreboard and its paired comparisons, draw the tables' figures against embedding dimension, write the landing page.
What to stack and show comes from the table of task kinds (tasks/kinds.py); the files come in one JSON plan written
by the summary rule."""

import argparse
import importlib
import json
from pathlib import Path

import pandas as pd
import yaml

from astroclip_eval.io.atomic import atomic_path, save_figure, write_csv
from astroclip_eval.io.cli import run
from astroclip_eval.io.data import Survey
from astroclip_eval.io.errors import UserError
from astroclip_eval.report.overview import (
    reference_section,
    render,
    scoreboard_section,
    shared_section,
    table_section,
    versions,
)
from astroclip_eval.report.plotting import empty_figure, reference_forest
from astroclip_eval.report.scoreboard import (
    AGAINST_COLUMNS,
    against_baselines,
    board,
    comparisons,
    main_scores,
    stale,
    table_frame,
)
from astroclip_eval.report.summary import combine
from astroclip_eval.tasks.kinds import enabled
from astroclip_eval.tasks.references import all_references


def _json(path: str) -> dict:
    return json.loads(Path(path).read_text())


def main(args: argparse.Namespace) -> None:
    plan = json.loads(args.plan)
    models, config = plan["models"], _json(plan["config"])
    embedded = {m: _json(e) for m, e in zip(models, plan["embeddings"])}
    dims = {m: int(e["dim"]) for m, e in embedded.items()}
    records = {kind: [_json(path) for path in paths] for kind, paths in plan["results"].items()}
    checkpoints = {m: _json(c) for m, c in zip(models, plan["checkpoints"])}
    data_bytes = Path(config["dataset"]["path"]).stat().st_size
    with Survey(config["dataset"]["path"]) as survey:
        targetids = survey.fingerprint("valid")["targetids_sha256"]
    for kind, paths in plan["results"].items():  # only this run's numbers reach the scoreboard
        for path, results in zip(paths, records[kind]):
            why = stale(results, config, checkpoints[results["model"]], data_bytes, targetids)
            if why:
                raise UserError(f"{path}: {why}; remove it, or rerun it with `snakemake -f {path}`")
    scores = board([r for rs in records.values() for r in rs], dims)
    baselines = plan["baselines"]
    widths = {b: len(config["baselines"][b]["columns"]) for b in baselines}  # a baseline's "dimension"
    frames, sections, compared, against, theirs, read = {}, [], [], [], [pd.DataFrame(columns=scores.columns)], {}

    def predictions_of(paths: dict[str, str]) -> dict[str, pd.DataFrame]:
        for path in paths.values():  # a predictions file serves every table of its step: read once
            if path not in read:
                read[path] = pd.read_parquet(path)
        return {name: read[path] for name, path in paths.items()}

    for kind in enabled(config):
        for table in kind.tables:
            files = plan["tables"][table.name]
            frame = frames[table.name] = combine(
                {r["model"]: table_frame(r, table.name) for r in records[kind.name]}, dims)
            extra = {b: pd.read_csv(path) for b, path in zip(baselines, plan["baseline_tables"].get(table.name, []))}
            shown = pd.concat([frame, *[f.assign(model=b, embedding_dim=widths[b])[frame.columns] for b, f in extra.items()]],
                              ignore_index=True)  # the baselines' rows after the models'; the figures show the models
            write_csv(files["output"], shown)
            if table.figure:
                module, function = table.figure.split(":")
                draw = getattr(importlib.import_module(module), function)
                save_figure(files["figure"], draw(frame) if len(frame) else empty_figure(f"no rows in {table.name}"),
                            bbox_inches="tight")
            if len(frame) or table.figure:  # a table no model has rows in (posteriors without a joint) is not shown
                sections.append(table_section(table, shown, files.get("figure")))
            predictions = predictions_of(dict(zip(models, plan["predictions"].get(table.name, []))))
            compared += comparisons(table, scores, predictions, config["downstream"]["bootstrap"])
            if extra:
                best = pd.DataFrame([{"model": b, "embedding_dim": widths[b], **row} for b, f in extra.items()
                                     for row in main_scores(table, f)], columns=scores.columns)
                theirs.append(best)
                predictions.update(predictions_of(dict(zip(baselines, plan["baseline_predictions"][table.name]))))
                against += against_baselines(table, scores, best, predictions, config["downstream"]["bootstrap"])
    theirs = pd.concat(theirs, ignore_index=True)  # the baselines' best rows, after the models' on the scoreboard
    write_csv(plan["scoreboard"], pd.concat([scores, theirs], ignore_index=True) if len(theirs) else scores)
    against = pd.DataFrame(against, columns=AGAINST_COLUMNS)
    write_csv(plan["against_baselines"], against)
    compared = pd.DataFrame(compared, columns=["table", "score", "label", "query", "best", "next", "difference", "lo",
                                               "hi", "resolved"])
    write_csv(plan["comparisons"], compared)
    references = all_references(config, frames)
    write_csv(plan["references"], references)
    valid = _json(plan["valid"])
    simulated = valid.get("selection") is not None  # the simulator records how it selected
    save_figure(plan["references_figure"], reference_forest(references, simulated), bbox_inches="tight")
    listed = reference_section(references, simulated)
    sections = [scoreboard_section(config, scores, compared, references, plan["references_figure"],
                                   theirs, against, simulated),
                *([listed] if listed else []), *sections]
    sections += [shared_section(function, _json(plan["shared"][key]))
                 for kind in enabled(config) for key, (_, _, function) in kind.shared.items()]
    page = render(config, valid, checkpoints, embedded, sections, versions(),
                  schema=yaml.safe_load(Path(plan["schema"]).read_text()))
    with atomic_path(plan["overview"]) as tmp:
        tmp.write_text(page, encoding="utf-8")


parser = argparse.ArgumentParser(prog="summary", description=__doc__)
parser.add_argument("--plan", required=True, help="JSON: models; per kind its results files; per table its "
                    "predictions files, output and figure; shared files; embeddings.json and astroclip_model.json per "
                    "model; valid_summary.json; config.json (the config as validated); the schema; the outputs (the "
                    "overview, the scoreboard, its comparisons, the references and their figure)")
run(main, parser)
