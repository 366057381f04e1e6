"""Stop before the similarity notebook runs if a query row is out of range or not valid: one line, exit 1."""

import argparse
import json

from astroclip_eval.cli import run
from astroclip_eval.embed import load_indices
from astroclip_eval.similarity import check_queries


def main(args: argparse.Namespace) -> None:
    with open(args.summary) as f:
        n_rows = json.load(f)["n_rows"]
    check_queries(json.loads(args.queries), load_indices(args.valid), n_rows)


parser = argparse.ArgumentParser(prog="check_queries", description=__doc__)
parser.add_argument("--valid", required=True, help="valid_indices.pt")
parser.add_argument("--summary", required=True, help="valid_summary.json (for the number of rows)")
parser.add_argument("--queries", required=True, help="JSON list of query rows")
run(main, parser)
