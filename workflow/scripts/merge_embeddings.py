"""Concatenate a model's embedding shards, in row order, into the image and spectrum embedding files."""

import argparse

from astroclip_eval.atomic import save_torch
from astroclip_eval.cli import run
from astroclip_eval.data import Survey
from astroclip_eval.embed import merge_shards


def main(args: argparse.Namespace) -> None:
    with Survey(args.dataset) as survey:
        n_rows = survey.n_rows(args.split)
    images, spectra = merge_shards(args.shards, n_rows)
    save_torch(args.image_out, images)
    save_torch(args.spectrum_out, spectra)


parser = argparse.ArgumentParser(prog="merge_embeddings", description=__doc__)
parser.add_argument("shards", nargs="+", help="shard files in shard order")
parser.add_argument("--dataset", required=True, help="the survey file, for the number of rows")
parser.add_argument("--split", default="valid", choices=["train", "valid"])
parser.add_argument("--image-out", required=True)
parser.add_argument("--spectrum-out", required=True)
run(main, parser)
