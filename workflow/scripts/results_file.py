"""Write one model's results file of one task kind, validated against its schema (nothing written if it fails)."""

import argparse
import json
from pathlib import Path

import pandas as pd

from astroclip_eval.io.atomic import write_json
from astroclip_eval.io.cli import run
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.files import read_labels
from astroclip_eval.report.scoreboard import record, validate
from astroclip_eval.tasks.kinds import KINDS


def main(args: argparse.Namespace) -> None:
    plan = json.loads(args.plan)
    kind = next(k for k in KINDS if k.name == plan["kind"])
    frames = {name: read_labels(path) for name, path in plan["tables"].items()}  # a label named NA stays NA
    bench = Path(plan["benchmark"])
    seconds = float(pd.read_csv(bench, sep="\t")["s"].iloc[0]) if bench.exists() else None
    promoted = json.loads(Path(plan["checkpoint"]).read_text())
    embedded = json.loads(Path(plan["embedded"]).read_text())  # the checkpoint and data as embedded, not the cache's word
    if not embedded.get("checkpoint_sha256") or "targetids_sha256" not in embedded.get("data", {}):
        raise UserError(f"{plan['embedded']}: names no checkpoint_sha256 or data fingerprint (written before "
                        "embeddings recorded them); rerun the embed step")
    results = record(plan["model"], kind, frames, {**promoted, "sha256": embedded["checkpoint_sha256"]}, plan["dataset"],
                     embedded["data"]["targetids_sha256"], json.loads(Path(plan["valid"]).read_text()),
                     json.loads(Path(plan["config"]).read_text()), seconds)
    try:
        validate(results, plan["schema"])
    except ValueError as error:
        raise UserError(str(error)) from None
    write_json(plan["output"], results)


parser = argparse.ArgumentParser(prog="results_file", description=__doc__)
parser.add_argument("--plan", required=True, help="JSON: model, kind, its tables' CSVs, the promotion record, "
                    "embeddings.json (the checkpoint's sha256 as embedded), valid_summary.json, config.json, the data "
                    "file, the results schema, the step's benchmark, output")
run(main, parser)
