"""Simulate the demo survey file (published AstroCLIP layout)."""

import argparse
import json
import os

from astroclip_eval.demo.catalogues import write_catalogues
from astroclip_eval.demo.simulate import SurveyConfig, simulate, write_survey
from astroclip_eval.io.cli import run


def main(args: argparse.Namespace) -> None:
    cfg = SurveyConfig(**json.loads(args.plan))
    survey = simulate(cfg)
    write_catalogues(os.path.dirname(os.path.abspath(args.output)), survey.catalogues)  # before the survey: it is
    write_survey(args.output, survey, cfg.n_groups)  # the rule's first output, so a file there means all are done


parser = argparse.ArgumentParser(prog="simulate_survey", description=__doc__)
parser.add_argument("--plan", required=True, help="JSON object of SurveyConfig fields")
parser.add_argument("--output", required=True)
run(main, parser)
