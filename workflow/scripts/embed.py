"""Embed one shard (a contiguous row range) of a split's images and spectra with a promoted checkpoint: the GPU step."""

import argparse
import json
import logging

import torch

from astroclip_eval.checkpoints import sha256
from astroclip_eval.embed import describe, embed_split, prepare, shard_rows
from astroclip_eval.io.atomic import save_torch
from astroclip_eval.io.cli import run
from astroclip_eval.io.data import Survey
from astroclip_eval.io.device import resolve_device
from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import AUTO_LOADER
from astroclip_eval.models import load


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)  # as many as the rule declares; more oversubscribes shared cores
    device = resolve_device(args.device)
    where = f"models.{args.model}.loader"
    model = prepare(load(args.loader, args.checkpoint, device, json.loads(args.loader_options), where), device)

    def check_dim(dim: int) -> None:
        if args.expected_dim is not None and dim != args.expected_dim:
            raise UserError(
                f"models.{args.model}.embedding_dim: the config expects {args.expected_dim}, "
                f"but {args.checkpoint} embeds into {dim} dimensions"
            )

    if hasattr(model, "embedding_dim"):
        check_dim(int(model.embedding_dim))  # before any row is read
    with Survey(args.dataset) as survey:
        n_rows = survey.n_rows(args.split)
        data = survey.fingerprint(args.split)
        if n_rows == 0:
            needed = " (protocols.run zero_shot and few_shot are fitted on it)" if args.split == "train" else ""
            raise UserError(f"{args.dataset}: the {args.split} split has no rows; nothing to embed{needed}")
        lo, hi = shard_rows(n_rows, args.batch_size, args.shard, args.shards)
        if lo == hi:
            logging.getLogger("embed").warning("embedding.shards: %d shards for %d batches of %d rows; shard %d is empty",
                        args.shards, -(-n_rows // args.batch_size), args.batch_size, args.shard)
        try:
            images, spectra = embed_split(model, survey, args.split, args.batch_size, device, args.precision, lo, hi)
        except UserError as error:  # name the model: one line says which run to look at
            raise UserError(f"model {args.model}: {error}") from None
    if images.shape[0]:
        check_dim(images.shape[1])
    save_torch(args.out, {"rows": torch.tensor([lo, hi]), "image": images, "spectrum": spectra, "device": describe(device),
                          "checkpoint_sha256": sha256(args.checkpoint), "data": data})  # what was embedded


parser = argparse.ArgumentParser(prog="embed", description=__doc__)
parser.add_argument("--checkpoint", required=True)
parser.add_argument("--dataset", required=True)
parser.add_argument("--split", default="valid", choices=["train", "valid"])
parser.add_argument("--shard", type=int, default=0, help="which shard, 0-based")
parser.add_argument("--shards", type=int, default=1, help="how many shards the split is cut into")
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--precision", default="32", choices=["32", "bf16"])
parser.add_argument("--device", default="auto")
parser.add_argument("--out", required=True, help="the shard file: {rows, image, spectrum}")
parser.add_argument("--loader", default=AUTO_LOADER, help="auto or package.module:function (astroclip_eval.models)")
parser.add_argument("--loader-options", default="{}", help="JSON object passed to the loader")
parser.add_argument("--expected-dim", type=int, help="stop if the model's embedding dimension differs")
parser.add_argument("--model", default="?", help="the model's name in the config, for messages")
parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
run(main, parser)
