"""Join the configured catalogues to one split's rows and write its labels (properties and classes) and counts."""

import argparse
import json
import logging

from astroclip_eval.io.atomic import write_csv, write_json
from astroclip_eval.io.cli import run
from astroclip_eval.io.data import Survey
from astroclip_eval.io.definitions import needed_columns
from astroclip_eval.tasks.catalogues import join
from astroclip_eval.tasks.labels import label_table


def main(args: argparse.Namespace) -> None:
    config = json.loads(args.plan)
    with Survey(args.dataset) as survey:
        targetids = survey.read(args.split, "targetids")
    columns, counts, matched = join(config["catalogues"], needed_columns(config), targetids)
    table, dropped, undefined = label_table(config, columns, matched, args.split)
    table.insert(1, "targetid", targetids)  # carried to the per-galaxy predictions
    for name, rules in dropped.items():
        counts[name]["dropped"] = rules
    summary = {
        "split": args.split,
        "joins": counts,
        "labelled": {name: int(table[name].notna().sum()) for kind in ("properties", "classifications")
                     for name in config.get(kind, {})},
        "undefined": undefined,  # rows their catalogue kept on which the label has no value
    }
    write_csv(args.labels, table)
    write_json(args.summary, summary)
    log = logging.getLogger("join_catalogues")
    for name, c in counts.items():
        log.info("%s (%s): %d of %d rows matched, %d duplicates; dropped by rule: %s", name, c["method"], c["matched"],
                 c["rows"], c["duplicates"], c.get("dropped", {}))
    log.info("labelled rows: %s; undefined on kept rows: %s", summary["labelled"], undefined)


parser = argparse.ArgumentParser(prog="join_catalogues", description=__doc__)
parser.add_argument("--dataset", required=True)
parser.add_argument("--split", required=True, choices=["train", "valid"])
parser.add_argument("--plan", required=True, help="JSON of the config's catalogues, properties and classifications")
parser.add_argument("--labels", required=True)
parser.add_argument("--summary", required=True)
run(main, parser)
