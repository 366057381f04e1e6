"""Promote the lowest-val/loss checkpoint of a run directory (or one given file) into the cache."""

import argparse
import logging

from astroclip_eval.checkpoints import promote
from astroclip_eval.io.cli import run


def main(args: argparse.Namespace) -> None:
    chosen = promote(args.source, args.ckpt, args.meta)
    logging.getLogger("promote").info("promoted %s (%s = %s, epoch %s)", chosen.path, chosen.monitor, chosen.score, chosen.epoch)


parser = argparse.ArgumentParser(prog="promote_checkpoint", description=__doc__)
parser.add_argument("--source", required=True, help="run directory or checkpoint file")
parser.add_argument("--ckpt", required=True)
parser.add_argument("--meta", required=True)
run(main, parser)
