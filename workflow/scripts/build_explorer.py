"""Write one model's galaxy explorer: a self-contained HTML page of its embedding maps and neighbours."""

import argparse
import json
import logging
import time

from astroclip_eval.io.atomic import atomic_path
from astroclip_eval.io.cli import run
from astroclip_eval.io.data import Survey
from astroclip_eval.io.files import load_split, read_labels
from astroclip_eval.tasks.explorer import EMBEDDED_PAGE_BYTES, build


def main(args: argparse.Namespace) -> None:
    start = time.monotonic()
    embeddings, valid = load_split(args.image, args.spectrum, args.valid, args.dataset, labels=args.labels)
    settings = json.loads(args.plan)
    labels = read_labels(args.labels, settings["classes"]) if args.labels else None
    with Survey(args.dataset) as survey:
        html, summary = build(args.model, survey, embeddings, valid, settings, labels)
    with atomic_path(args.output) as tmp:
        tmp.write_text(html)
    log = logging.getLogger("build_explorer")
    if summary["bytes"] > EMBEDDED_PAGE_BYTES:
        log.warning("%s is %.1f MB: Chromium-based browsers do not open it inside `--report report.html` (data URLs "
                    "stop at 2 MB); it opens on its own and in a zip report (`--report report.zip`)", args.output,
                    summary["bytes"] / 1e6)
    log.info(
        "%d of %d valid rows drawn, %d galaxies in the page, %.1f MB, %.0f s", summary["drawn"], summary["valid"],
        summary["galaxies"], summary["bytes"] / 1e6, time.monotonic() - start,
    )


parser = argparse.ArgumentParser(prog="build_explorer", description=__doc__)
parser.add_argument("--model", required=True)
parser.add_argument("--dataset", required=True)
parser.add_argument("--image", required=True)
parser.add_argument("--spectrum", required=True)
parser.add_argument("--valid", required=True)
parser.add_argument("--labels", help="the joined catalogues' labels.csv, to colour the map by them")
parser.add_argument("--plan", required=True, help="JSON of the explorer and similarity settings")
parser.add_argument("--output", required=True)
run(main, parser)
