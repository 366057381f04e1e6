"""Simulate the demo survey file (published AstroCLIP layout)."""

import argparse
import json

from astroclip_eval.cli import run
from astroclip_eval.simulate import SurveyConfig, simulate, write_survey


def main(args: argparse.Namespace) -> None:
    cfg = SurveyConfig(**json.loads(args.params))
    write_survey(args.output, simulate(cfg), cfg.n_groups)


parser = argparse.ArgumentParser(prog="simulate_survey", description=__doc__)
parser.add_argument("--params", required=True, help="JSON object of SurveyConfig fields")
parser.add_argument("--output", required=True)
run(main, parser)
