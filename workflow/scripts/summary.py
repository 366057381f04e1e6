"""Combine every model's redshift R^2 into one table and plot R^2 against embedding dimension."""

import argparse

import pandas as pd

from astroclip_eval.atomic import save_figure, write_csv
from astroclip_eval.checkpoints import safe_load
from astroclip_eval.cli import run
from astroclip_eval.plotting import r2_vs_dim
from astroclip_eval.summary import combine


def main(args: argparse.Namespace) -> None:
    tables = {m: pd.read_csv(t) for m, t in zip(args.models, args.tables)}
    dims = {m: int(safe_load(e).shape[1]) for m, e in zip(args.models, args.embeddings)}
    summary = combine(tables, dims)
    write_csv(args.table_out, summary)
    save_figure(args.figure_out, r2_vs_dim(summary), bbox_inches="tight")


parser = argparse.ArgumentParser(prog="summary", description=__doc__)
parser.add_argument("--models", nargs="+", required=True)
parser.add_argument("--tables", nargs="+", required=True, help="redshift_r2.csv per model, in --models order")
parser.add_argument("--embeddings", nargs="+", required=True, help="image_embeddings.pt per model (for the dimension)")
parser.add_argument("--table-out", required=True)
parser.add_argument("--figure-out", required=True)
run(main, parser)
