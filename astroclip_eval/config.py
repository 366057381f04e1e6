"""Config checks that end in one line naming the key, before Snakemake plans anything."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from snakemake.utils import validate

from .errors import UserError
from .labels import needed_columns
from .plan import AUTO_LOADER, LOADER_SPEC, trained_run_dir


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
    config = copy.deepcopy(config)
    validate(config, str(schema_path))  # the schema's defaults filled in: the checks below read them, never restate them
    for name, entry in config["models"].items():
        given = [k for k in ("checkpoint_dir", "checkpoint", "train") if k in entry]
        if len(given) != 1:
            raise UserError(
                f"config: 'models.{name}' must give exactly one of checkpoint_dir, checkpoint, train (got {given or 'none'})"
            )
        trained = entry.get("train", {}).get("embedding_dim")
        if trained is not None and entry.get("embedding_dim", trained) != trained:
            raise UserError(
                f"config: 'models.{name}.embedding_dim' ({entry['embedding_dim']}) differs from "
                f"'models.{name}.train.embedding_dim' ({trained})"
            )
        if entry["loader"] != AUTO_LOADER and not LOADER_SPEC.match(entry["loader"]):
            raise UserError(
                f"config: 'models.{name}.loader': '{entry['loader']}' is neither 'auto' nor of the form "
                "'package.module:function'"
            )
    _check_no_collision(config)
    valid = config["valid"]
    if valid["z_min"] > valid["z_max"]:
        raise UserError(f"config: 'valid.z_min' ({valid['z_min']}) is larger than 'valid.z_max' ({valid['z_max']})")
    bad = [q for q in config["similarity"]["query_indices"] if q < 0]
    if bad:
        raise UserError(f"config: 'similarity.query_indices' must be row indices >= 0, got {bad}")
    both = set(config["properties"]) & set(config["classifications"])
    if both:
        raise UserError(f"config: '{sorted(both)[0]}' is both in properties and in classifications; give them different names")
    try:  # catalogue references and expressions, before any file is read
        needed_columns(config)
    except UserError as error:
        raise UserError(f"config: {error}") from None


def _check_no_collision(config: dict[str, Any]) -> None:
    """A given checkpoint must not lie where the train rule writes, or Snakemake would plan to train it."""
    written = {trained_run_dir(config["train_dir"], m): m for m, e in config["models"].items() if "train" in e}
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
