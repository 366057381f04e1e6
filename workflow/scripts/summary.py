"""Combine every model's redshift R^2, redshift metrics, retrieval, property R^2 and classification scores into tables,
plot R^2 against dimension, write the landing page."""

import argparse
import json
from pathlib import Path

import pandas as pd
import yaml

from astroclip_eval.io.atomic import atomic_path, save_figure, write_csv
from astroclip_eval.io.cli import run
from astroclip_eval.io.files import read_labels
from astroclip_eval.report.overview import render, versions
from astroclip_eval.report.plotting import empty_figure, property_r2_vs_dim, r2_vs_dim
from astroclip_eval.report.summary import combine
from astroclip_eval.tasks.downstream import CLASS_COLUMNS, PROPERTY_COLUMNS
from astroclip_eval.tasks.retrieval import COLUMNS as RETRIEVAL_COLUMNS

PROPERTY = ["model", "embedding_dim", *PROPERTY_COLUMNS]
CLASS = ["model", "embedding_dim", *CLASS_COLUMNS]


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
    metrics = combine({m: pd.read_csv(t) for m, t in zip(args.models, args.metrics)}, dims,
                      ["model", "embedding_dim", "protocol", "query", "target", "bias", "sigma_nmad", "outlier_fraction"])
    write_csv(args.metrics_out, metrics)
    config = json.loads(Path(args.config).read_text())
    labelled = {}
    if args.properties:
        scored = {m: read_labels(t) for m, t in zip(args.models, args.properties)}  # a property named NA stays NA
        labelled["properties"] = combine(scored, dims, PROPERTY)
        labelled["classification"] = combine({m: read_labels(t) for m, t in zip(args.models, args.classification)}, dims, CLASS)
        labelled["joins"] = json.loads(Path(args.joins).read_text())
        write_csv(args.properties_out, labelled["properties"])
        write_csv(args.classification_out, labelled["classification"])
        protocols = config["redshift"]["protocols"]
        shown = "zero_shot" if "zero_shot" in protocols else protocols[0]
        fig = property_r2_vs_dim(labelled["properties"], shown) if len(labelled["properties"]) else empty_figure("no properties")
        save_figure(args.properties_figure_out, fig, bbox_inches="tight")
    checkpoints = {m: json.loads(Path(c).read_text()) for m, c in zip(args.models, args.checkpoints)}
    valid = json.loads(Path(args.valid_summary).read_text())
    page = render(config, valid, summary, retrieval, checkpoints, embedded, args.figure_out, versions(), metrics=metrics,
                  schema=yaml.safe_load(Path(args.schema).read_text()), **labelled)
    with atomic_path(args.overview_out) as tmp:
        tmp.write_text(page, encoding="utf-8")


parser = argparse.ArgumentParser(prog="summary", description=__doc__)
parser.add_argument("--models", nargs="+", required=True)
parser.add_argument("--tables", nargs="+", required=True, help="redshift_r2.csv per model, in --models order")
parser.add_argument("--retrieval", nargs="+", required=True, help="retrieval.csv per model, in --models order")
parser.add_argument("--embeddings", nargs="+", required=True, help="embeddings.json per model (dimension, shards, devices)")
parser.add_argument("--checkpoints", nargs="+", required=True, help="astroclip_model.json per model (promotion record)")
parser.add_argument("--valid-summary", required=True, help="valid_summary.json")
parser.add_argument("--config", required=True, help="config.json: the workflow's config as validated, defaults filled in")
parser.add_argument("--schema", required=True, help="the config schema, whose descriptions the settings table shows")
parser.add_argument("--table-out", required=True)
parser.add_argument("--retrieval-out", required=True)
parser.add_argument("--figure-out", required=True)
parser.add_argument("--overview-out", required=True)
parser.add_argument("--metrics", nargs="+", required=True, help="redshift_metrics.csv per model, in --models order")
parser.add_argument("--metrics-out", required=True)
parser.add_argument("--properties", nargs="*", default=[], help="properties_r2.csv per model (when catalogues are configured)")
parser.add_argument("--classification", nargs="*", default=[], help="classification.csv per model")
parser.add_argument("--joins", help="the validation split's catalogue join counts (join.json)")
parser.add_argument("--properties-out")
parser.add_argument("--classification-out")
parser.add_argument("--properties-figure-out")
run(main, parser)
