"""Config checks that end in one line naming the key, before Snakemake plans anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import UserError


def trained_run_dir(train_dir: str, model: str) -> str:
    """Where the train rule writes a model's run directory (the reproduction's `out/astroclip_ckpt_<id>` naming)."""
    return f"{train_dir}/astroclip_ckpt_{model}"


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def check(config: dict[str, Any], schema_path: str | Path) -> None:
    """Raise UserError for the first schema violation, or for rules the schema cannot express."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        if error.validator == "additionalProperties":
            raise UserError(f"config: {error.message} under '{_where(error)}'; see config/README.md for the keys")
        expected = error.schema.get("description", "")
        raise UserError(f"config: '{_where(error)}': {error.message}" + (f" (expected: {expected})" if expected else ""))
    for name, entry in config["models"].items():
        given = [k for k in ("checkpoint_dir", "checkpoint", "train") if k in entry]
        if len(given) != 1:
            raise UserError(f"config: 'models.{name}' must give exactly one of checkpoint_dir, checkpoint, train (got {given or 'none'})")
        trained = entry.get("train", {}).get("embedding_dim")
        if trained is not None and entry.get("embedding_dim", trained) != trained:
            raise UserError(f"config: 'models.{name}.embedding_dim' ({entry['embedding_dim']}) differs from 'models.{name}.train.embedding_dim' ({trained})")
    _check_no_collision(config)
    valid = config.get("valid", {})
    if valid.get("z_min", 0.0) > valid.get("z_max", 0.8):
        raise UserError(f"config: 'valid.z_min' ({valid['z_min']}) is larger than 'valid.z_max' ({valid['z_max']})")
    bad = [q for q in config.get("similarity", {}).get("query_indices", []) if q < 0]
    if bad:
        raise UserError(f"config: 'similarity.query_indices' must be row indices >= 0, got {bad}")


def _check_no_collision(config: dict[str, Any]) -> None:
    """A given checkpoint must not lie where the train rule writes, or Snakemake would plan to train it."""
    train_dir = config.get("train_dir", "out")
    written = {trained_run_dir(train_dir, m): m for m, e in config["models"].items() if "train" in e}
    for name, entry in config["models"].items():
        given = entry.get("checkpoint_dir") or entry.get("checkpoint")
        if not given:
            continue
        path = Path(given)
        for run_dir, trained in written.items():
            if path == Path(run_dir) or Path(run_dir) in path.parents:
                key = "checkpoint_dir" if "checkpoint_dir" in entry else "checkpoint"
                raise UserError(
                    f"config: 'models.{name}.{key}' ({given}) lies in {run_dir}, where model '{trained}' is trained; "
                    "rename one of the two models or set 'train_dir'"
                )
