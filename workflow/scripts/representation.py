"""Measure one model's embedding space on the valid validation rows (astroclip_eval/tasks/representation.py) and
write its table, its singular-value spectra and their figure; every output is computed before the first is written."""

import argparse
import json
import logging
import time

from astroclip_eval.io.atomic import save_figure, write_csv
from astroclip_eval.io.cli import run
from astroclip_eval.io.device import resolve_device
from astroclip_eval.io.files import load_split, split_labels
from astroclip_eval.tasks.representation import measure, spectrum_figure


def main(args: argparse.Namespace) -> None:
    start = time.monotonic()
    plan = json.loads(args.plan)
    settings = plan["settings"]
    embeddings, valid = load_split(plan["image_embeddings"], plan["spectrum_embeddings"], plan["valid_indices"],
                                   plan["dataset"], labels=plan["labels"] or None)
    properties = [name for name in settings["labels"] if name != "redshift"]
    labels = split_labels(plan["dataset"], {"valid": plan["labels"]}, properties, "redshift" in settings["labels"])["valid"]
    table, spectra = measure(embeddings, valid, labels, settings["neighbours"], plan["image_embeddings"],
                             plan["bootstrap"], resolve_device(plan["device"], "downstream.device"))
    figure = spectrum_figure(spectra, f"{plan['model']}: singular-value spectra (valid rows, unit length)")
    save_figure(plan["figure"], figure, bbox_inches="tight")  # drawn first: the tables' writes cannot fail on a figure
    write_csv(plan["spectrum"], spectra)
    write_csv(plan["table"], table)
    shown = table.set_index(["modality", "metric"])["value"]
    logging.getLogger("representation").info(
        "%s: %d valid rows; rankme %.1f (image), %.1f (spectrum) of %d dimensions; mutual kNN %.3f; %.0f s",
        plan["model"], len(valid), shown[("image", "rankme")], shown[("spectrum", "rankme")],
        embeddings["image"].shape[1], shown[("both", f"mutual_knn{settings['neighbours']}")], time.monotonic() - start)


parser = argparse.ArgumentParser(prog="representation", description=__doc__)
parser.add_argument("--plan", required=True, help="JSON: model, dataset, image_embeddings, spectrum_embeddings, "
                    "valid_indices, labels (the joined labels.csv, or \"\"), settings (the config's representation "
                    "section, its labels listed), bootstrap, device, and the outputs table, spectrum and figure")
run(main, parser)
