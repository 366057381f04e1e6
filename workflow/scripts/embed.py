"""Embed every image and spectrum of the validation split with a promoted checkpoint (the GPU step)."""

import argparse

import torch

from astroclip_eval.atomic import save_torch
from astroclip_eval.cli import run
from astroclip_eval.data import Survey
from astroclip_eval.embed import embed_split, resolve_device
from astroclip_eval.errors import UserError
from astroclip_eval.model import load_reference


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)  # as many as the rule declares; more oversubscribes shared cores
    device = resolve_device(args.device)
    model = load_reference(args.checkpoint, device)
    if args.expected_dim is not None and model.embedding_dim != args.expected_dim:
        raise UserError(
            f"models.{args.model}.embedding_dim: the config expects {args.expected_dim}, "
            f"but {args.checkpoint} embeds into {model.embedding_dim} dimensions"
        )
    with Survey(args.dataset) as survey:
        images, spectra = embed_split(model, survey, args.split, args.batch_size, device)
    save_torch(args.image_out, images)
    save_torch(args.spectrum_out, spectra)


parser = argparse.ArgumentParser(prog="embed", description=__doc__)
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--dataset", required=True)
parser.add_argument("--split", default="valid", choices=["train", "valid"])
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--device", default="auto")
parser.add_argument("--image-out", required=True)
parser.add_argument("--spectrum-out", required=True)
parser.add_argument("--expected-dim", type=int, help="stop if the model's embedding dimension differs")
parser.add_argument("--model", default="?", help="the model's name in the config, for messages")
parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
run(main, parser)
