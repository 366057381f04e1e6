"""Render an executed notebook to HTML for the report."""

import argparse

from astroclip_eval.io.cli import run
from astroclip_eval.io.notebooks import to_html


def main(args: argparse.Namespace) -> None:
    to_html(args.notebook, args.html)


parser = argparse.ArgumentParser(prog="notebook_html", description=__doc__)
parser.add_argument("notebook")
parser.add_argument("html")
run(main, parser)
