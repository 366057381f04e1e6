"""Config checks that end in one line naming the key, before Snakemake plans anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import UserError


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
    valid = config.get("valid", {})
    if valid.get("z_min", 0.0) > valid.get("z_max", 0.8):
        raise UserError(f"config: 'valid.z_min' ({valid['z_min']}) is larger than 'valid.z_max' ({valid['z_max']})")
    bad = [q for q in config.get("similarity", {}).get("query_indices", []) if q < 0]
    if bad:
        raise UserError(f"config: 'similarity.query_indices' must be row indices >= 0, got {bad}")
