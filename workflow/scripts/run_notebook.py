"""Execute one of the workflow's parameterised notebooks; a failing cell ends in one line, not a traceback."""

import argparse
import json

from astroclip_eval.io.cli import run
from astroclip_eval.io.notebooks import execute


def main(args: argparse.Namespace) -> None:
    execute(args.notebook, args.output, json.loads(args.plan), args.failed_copy)


parser = argparse.ArgumentParser(prog="run_notebook", description=__doc__)
parser.add_argument("notebook")
parser.add_argument("output")
parser.add_argument("--plan", required=True, help="JSON object of the notebook's parameters")
parser.add_argument("--failed-copy", required=True, help="where the executed notebook goes if a cell fails")
run(main, parser)
