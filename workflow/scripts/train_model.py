"""Train one reference AstroCLIP model into a Lightning run directory."""

import argparse
import json

import torch

from astroclip_eval.demo.train import TrainConfig, train
from astroclip_eval.io.cli import run


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)  # as many as the rule declares; more oversubscribes shared cores
    train(args.dataset, args.run_dir, TrainConfig(**json.loads(args.plan)))


parser = argparse.ArgumentParser(prog="train_model", description=__doc__)
parser.add_argument("--dataset", required=True)
parser.add_argument("--run-dir", required=True)
parser.add_argument("--plan", required=True, help="JSON object of TrainConfig fields")
parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
run(main, parser)
