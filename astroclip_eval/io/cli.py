"""What every workflow script shares: logging to the rule's log file, one-line errors for bad input, and a full
traceback in that log for anything else (a plug-in's bug, CUDA out of memory), which is what
`--show-failed-logs` prints."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Callable

from astroclip_eval.io.errors import UserError


def run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    """Parse arguments, log to stderr (and --log), turn a UserError into one line and any other exception into its
    traceback, and exit 1."""
    parser.add_argument("--log", help="also write the log to this file")
    args = parser.parse_args()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log:
        handlers.append(logging.FileHandler(args.log, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    try:
        main(args)
    except UserError as exc:
        logging.getLogger(parser.prog).error("%s", exc)
        sys.exit(1)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            logging.getLogger(parser.prog).exception("failed with an unexpected error")
            sys.exit(1)
        where = f" while writing {exc.filename}" if exc.filename else ""  # a write outside the atomic helpers
        logging.getLogger(parser.prog).error("no space left on device%s", where)
        sys.exit(1)
    except Exception:
        logging.getLogger(parser.prog).exception("failed with an unexpected error")
        sys.exit(1)
