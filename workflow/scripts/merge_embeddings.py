"""Concatenate a model's embedding shards, in row order, into the image and spectrum embedding files, and record
which device embedded each shard."""

import argparse

from astroclip_eval.embed import merge_shards
from astroclip_eval.io.atomic import save_torch, write_json
from astroclip_eval.io.cli import run
from astroclip_eval.io.data import Survey
from astroclip_eval.io.errors import UserError


def main(args: argparse.Namespace) -> None:
    with Survey(args.dataset) as survey:
        data = survey.fingerprint(args.split)
    images, spectra, shards = merge_shards(args.shards, data["rows"])
    if shards[0]["data"] != data:
        raise UserError(f"{args.shards[0]}: embedded from other galaxies than the {args.split} split of {args.dataset} "
                        "now holds (its targetids or groups differ): rerun the embed step")
    save_torch(args.image_out, images)
    save_torch(args.spectrum_out, spectra)
    write_json(args.provenance_out, {"rows": data["rows"], "dim": int(images.shape[1]), "shards": shards,
                                     "checkpoint_sha256": shards[0]["checkpoint_sha256"],  # the results files name it
                                     "data": data})  # the steps that read the embeddings beside the data file check it


parser = argparse.ArgumentParser(prog="merge_embeddings", description=__doc__)
parser.add_argument("shards", nargs="+", help="shard files in shard order")
parser.add_argument("--dataset", required=True, help="the survey file, for the number of rows")
parser.add_argument("--split", default="valid", choices=["train", "valid"])
parser.add_argument("--image-out", required=True)
parser.add_argument("--spectrum-out", required=True)
parser.add_argument("--provenance-out", required=True, help="JSON: each shard's rows and the device it ran on")
run(main, parser)
