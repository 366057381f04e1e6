"""The config, validated once against the schema (which also fills its defaults in), then the few rules a schema
cannot express; every failure is one line naming the key, before Snakemake plans anything."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from astroclip_eval.io.errors import UserError
from astroclip_eval.io.plan import trained_run_dir
from astroclip_eval.tasks.labels import needed_columns


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _filling_defaults(properties_rule: Any):
    """The `properties` keyword, extended to put each property's schema default into the instance before validating
    it, so nested sections (`default: {}`) get their own defaults in the same pass."""

    def properties(validator: Any, properties: dict, instance: Any, schema: dict) -> Any:
        if validator.is_type(instance, "object"):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from properties_rule(validator, properties, instance, schema)

    return properties


FillingValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"properties": _filling_defaults(jsonschema.Draft202012Validator.VALIDATORS["properties"])},
)


def check(config: dict[str, Any], schema_path: str | Path) -> None:
    """Validate `config` in place, filling in the schema's defaults; raise UserError for the first schema violation
    or for a rule the schema cannot express."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = jsonschema.exceptions.best_match(FillingValidator(schema).iter_errors(config))
    if error is not None:
        if error.validator == "additionalProperties":
            raise UserError(f"config: {error.message} under '{_where(error)}'; see config/README.md for the keys")
        expected = error.schema.get("description", "")
        raise UserError(f"config: '{_where(error)}': {error.message}" + (f" (expected: {expected})" if expected else ""))
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
    _check_no_collision(config)
    valid = config["valid"]
    if valid["z_min"] > valid["z_max"]:
        raise UserError(f"config: 'valid.z_min' ({valid['z_min']}) is larger than 'valid.z_max' ({valid['z_max']})")
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
