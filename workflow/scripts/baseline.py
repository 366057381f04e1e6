"""Score one baseline (a feature set from a catalogue) by the protocols fitted on the train split, on the redshift and every
configured property and classification, and write its tables and predictions as a model's steps write theirs."""

import argparse
import json
import logging

from astroclip_eval.io.atomic import write_csv, write_parquet
from astroclip_eval.io.cli import run
from astroclip_eval.io.data import Survey
from astroclip_eval.io.files import load_indices, read_labels, require_labels_of
from astroclip_eval.io.plan import Protocols
from astroclip_eval.tasks.baselines import score


def split(plan: dict, name: str, questions: list[str]) -> tuple:
    """One split's (label table, redshifts, valid rows)."""
    prefix = "" if name == "valid" else "train_"
    with Survey(plan["dataset"]) as survey:
        redshifts = survey.read(name, "redshifts")
        require_labels_of(plan[f"{prefix}labels"], survey.fingerprint(name)["targetids_sha256"],
                          f"the {name} split of {plan['dataset']}")
    return (read_labels(plan[f"{prefix}labels"], questions), redshifts,
            load_indices(plan[f"{prefix}valid"], rows=len(redshifts)))


def main(args: argparse.Namespace) -> None:
    plan = json.loads(args.plan)
    questions = plan["questions"]
    found = score(
        plan["baseline"], plan["entry"], split(plan, "valid", questions),
        split(plan, "train", questions), plan["properties"], questions, Protocols.of(plan["protocols"]),
        vote_fractions=plan["vote_fractions"], draws=plan["bootstrap"], where=(plan["labels"], plan["train_labels"]),
    )
    for key, frame in found.items():  # every table computed before the first is written
        (write_parquet if key.endswith("_predictions") else write_csv)(plan["outputs"][key], frame)
    logging.getLogger("baseline").info("%s: %d valid rows with its features scored", plan["baseline"],
                                       found["redshift_predictions"]["row"].nunique())


parser = argparse.ArgumentParser(prog="baseline", description=__doc__)
parser.add_argument("--plan", required=True, help="JSON: baseline (its name) and entry (its config), protocols (the "
                    "config's protocols section), properties, questions, vote_fractions (questions), bootstrap, dataset, "
                    "labels, train_labels, valid, train_valid and outputs (table or predictions name -> path)")
run(main, parser)
