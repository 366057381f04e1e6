"""Which torch device a step runs on, from a config key's value (auto, cpu, cuda, cuda:N)."""

from __future__ import annotations

import logging
import os

import torch

from astroclip_eval.io.errors import UserError

log = logging.getLogger(__name__)


def resolve_device(requested: str, key: str = "embedding.device") -> torch.device:
    """'auto' picks a GPU when present (with a warning when not, naming the cause when the job was given one);
    'cuda' without a GPU is an error naming `key`."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    log.info("CUDA_VISIBLE_DEVICES=%s", visible or "<unset>")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if visible and visible != "-1":  # the scheduler gave this job a GPU that torch cannot use
            cause = (f"torch {torch.__version__} is a CPU build" if torch.version.cuda is None
                     else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU: check the node's driver")
            log.warning(
                "this job was given GPU(s) %s but %s: running on the CPU, many times slower. Fix: install a CUDA "
                "build of torch in the workflow's environment (docs/slurm.md), or set "
                "%s: cpu and drop the GPU request", visible, cause, key)
        else:
            log.warning("%s is 'auto' and no GPU is visible: running on the CPU", key)
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{key}: '{requested}' requested but no CUDA GPU is visible (use 'auto' or 'cpu')")
    return torch.device(requested)
