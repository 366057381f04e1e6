"""Find the valid rows of a split from spectra and redshifts alone."""

import argparse
import logging

import torch

from astroclip_eval.io.atomic import save_torch, write_json
from astroclip_eval.io.cli import run
from astroclip_eval.io.data import Survey
from astroclip_eval.tasks.valid import valid_rows


def main(args: argparse.Namespace) -> None:
    with Survey(args.dataset) as survey:
        indices, summary = valid_rows(survey, args.z_min, args.z_max, args.split)
        summary["selection"] = survey.selection
    save_torch(args.indices, torch.from_numpy(indices))
    write_json(args.summary, summary)
    logging.getLogger("valid_indices").info(
        "%d of %d rows valid: %s", summary["n_valid"], summary["n_rows"], summary["invalid_by_reason"]
    )


parser = argparse.ArgumentParser(prog="valid_indices", description=__doc__)
parser.add_argument("--dataset", required=True)
parser.add_argument("--split", default="valid", choices=["train", "valid"])
parser.add_argument("--z-min", type=float, required=True)
parser.add_argument("--z-max", type=float, required=True)
parser.add_argument("--indices", required=True)
parser.add_argument("--summary", required=True)
run(main, parser)
