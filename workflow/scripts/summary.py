"""Combine every model's redshift R^2 and retrieval into tables, plot R^2 against dimension, write the landing page."""

import argparse
import json
from pathlib import Path

import pandas as pd

from astroclip_eval.atomic import atomic_path, save_figure, write_csv
from astroclip_eval.cli import run
from astroclip_eval.overview import render, versions
from astroclip_eval.plotting import r2_vs_dim
from astroclip_eval.retrieval import COLUMNS as RETRIEVAL_COLUMNS
from astroclip_eval.summary import combine


def main(args: argparse.Namespace) -> None:
    tables = {m: pd.read_csv(t) for m, t in zip(args.models, args.tables)}
    embedded = {m: json.loads(Path(e).read_text()) for m, e in zip(args.models, args.embeddings)}
    dims = {m: int(e["dim"]) for m, e in embedded.items()}
    summary = combine(tables, dims)
    write_csv(args.table_out, summary)
    retrieval = combine({m: pd.read_csv(t) for m, t in zip(args.models, args.retrieval)}, dims,
                        ["model", "embedding_dim", *RETRIEVAL_COLUMNS])
    write_csv(args.retrieval_out, retrieval)
    save_figure(args.figure_out, r2_vs_dim(summary), bbox_inches="tight")
    checkpoints = {m: json.loads(Path(c).read_text()) for m, c in zip(args.models, args.checkpoints)}
    valid = json.loads(Path(args.valid_summary).read_text())
    page = render(json.loads(args.config), valid, summary, retrieval, checkpoints, embedded, args.figure_out, versions())
    with atomic_path(args.overview_out) as tmp:
        tmp.write_text(page, encoding="utf-8")


parser = argparse.ArgumentParser(prog="summary", description=__doc__)
parser.add_argument("--models", nargs="+", required=True)
parser.add_argument("--tables", nargs="+", required=True, help="redshift_r2.csv per model, in --models order")
parser.add_argument("--retrieval", nargs="+", required=True, help="retrieval.csv per model, in --models order")
parser.add_argument("--embeddings", nargs="+", required=True, help="embeddings.json per model (dimension, shards, devices)")
parser.add_argument("--checkpoints", nargs="+", required=True, help="astroclip_model.json per model (promotion record)")
parser.add_argument("--valid-summary", required=True, help="valid_summary.json")
parser.add_argument("--config", required=True, help="the workflow's config as JSON")
parser.add_argument("--table-out", required=True)
parser.add_argument("--retrieval-out", required=True)
parser.add_argument("--figure-out", required=True)
parser.add_argument("--overview-out", required=True)
run(main, parser)
