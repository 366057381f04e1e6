"""What every workflow script shares: logging to the rule's log file and one-line errors for bad input."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from .errors import UserError


def run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    """Parse arguments, log to stderr (and --log), and turn a UserError into one line on stderr and exit 1."""
    parser.add_argument("--log", help="also write the log to this file")
    args = parser.parse_args()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log:
        handlers.append(logging.FileHandler(args.log, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    try:
        main(args)
    except UserError as exc:
        logging.getLogger(parser.prog).error("%s", exc)
        sys.exit(1)
