"""The config, validated once against the schema (which also fills its defaults in), then the few rules a schema
cannot express; every failure is one line naming the key, before Snakemake plans anything."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from astroclip_eval.io.definitions import needed_columns
from astroclip_eval.io.errors import UserError, short
from astroclip_eval.io.plan import fitted_on_train, trained_run_dir


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


# A config is a page of settings: larger files are refused before YAML reads them.
MAX_CONFIG_BYTES = 1 * 2**20


def check_files(paths: list[str | Path]) -> None:
    """Read each config file as YAML nodes (no object built) and refuse, in one line naming the file, line and key,
    what YAML would accept silently or expensively: aliases (a 600-byte file of nested aliases expands to billions
    of values in the first walk over it), a key given twice (YAML keeps the last, dropping the first block without a
    word), keys that are not text (`1:`), and files over MAX_CONFIG_BYTES."""
    for path in paths:
        path = Path(path)
        if not path.is_file():
            continue  # Snakemake names a missing config file itself
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UserError(f"{path}: {path.stat().st_size:,} bytes, over the {MAX_CONFIG_BYTES:,} a config may have")
        try:
            for event in yaml.parse(path.read_text(errors="replace"), Loader=yaml.SafeLoader):
                if isinstance(event, yaml.AliasEvent):
                    raise UserError(f"{path}: line {event.start_mark.line + 1}: YAML alias *{event.anchor[:40]}: "
                                    "aliases are not accepted in a config; write the values out")
            root = yaml.compose(path.read_text(errors="replace"), Loader=yaml.SafeLoader)
        except yaml.YAMLError as error:
            raise UserError(f"{path}: not valid YAML: {short(str(error).splitlines()[0])}") from None
        _check_node(path, root, "")


def _check_node(path: Path, node: yaml.Node | None, where: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            text = key.value if isinstance(key, yaml.ScalarNode) else None
            at = f"{where}.{text}" if where else str(text)
            if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str":
                raise UserError(f"{path}: line {key.start_mark.line + 1}: key {short(text)} under '{where or '(top level)'}' "
                                "is not text; names are text (quote it: \"1\")")
            if text in seen:
                raise UserError(f"{path}: line {key.start_mark.line + 1}: {short(at)} is given twice; YAML would keep "
                                "only the last and drop the first without a word")
            seen.add(text)
            _check_node(path, value, at)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_node(path, item, f"{where}[{i}]")


def _check_numbers(value: Any, where: str) -> None:
    """NaN or infinity anywhere in the config (YAML's .nan, .inf) is refused: every comparison with NaN is false, so a
    NaN bound or radius would pass every check and select nothing, or everything."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"config: '{where or '(top level)'}' is {value}; a finite number is expected")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_numbers(item, f"{where}[{i}]")


def first_error(validator: jsonschema.protocols.Validator, document: Any) -> jsonschema.ValidationError | None:
    """The most relevant place where `document` departs from the validator's schema (None when it conforms): the
    one validation call for the config and the results files alike."""
    return jsonschema.exceptions.best_match(validator.iter_errors(document))


def section_defaults(schema_path: str | Path, section: str) -> dict[str, Any]:
    """A section as validation fills it in for a config that leaves it out (what the tests and benchmarks call a
    task with, so their defaults are the schema's too)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    keys = schema["properties"][section]["properties"]
    return {key: copy.deepcopy(entry["default"]) for key, entry in keys.items() if "default" in entry}


def described(schema: dict[str, Any], section: str, key: str) -> str:
    """What a setting means, in the schema's own words ('' when it says nothing)."""
    return schema.get("properties", {}).get(section, {}).get("properties", {}).get(key, {}).get("description", "")


# Keys that moved (old place -> new place): a config written before the move is refused by a line naming the new key
MOVED = {
    "redshift.protocols": "protocols.run",
    "redshift.n_neighbours": "protocols.reproduction_neighbours",
    "redshift.exclude_self": "protocols.exclude_self",
    "redshift.zero_shot_neighbours": "protocols.zero_shot_neighbours",
    "redshift.few_shot_seed": "protocols.few_shot_seed",
    "redshift.few_shot_recipe": "protocols.few_shot_recipe",
}


# Entries' keys renamed so that "valid" names only the split and its valid rows: section -> (old key, new key, why)
RENAMED = {
    "catalogues": ("valid", "where", "a catalogue's row filter"),
    "properties": ("valid", "range", "the range a property's values are kept in"),
}


def _refuse_moved(config: dict[str, Any]) -> None:
    """A key of a config written before a rename is refused naming its new place, never dropped or defaulted."""
    for old, new in MOVED.items():
        section, key = old.split(".")
        if isinstance(config.get(section), dict) and key in config[section]:
            raise UserError(f"config: '{old}' is now '{new}' (the protocols section sets how every label is scored); "
                            "rename the key")
    if "redshift" in config:
        raise UserError("config: the 'redshift' section is now 'protocols' (how every label is scored); rename it")
    if "valid" in config:
        raise UserError("config: the 'valid' section is now 'row_filter' (which rows of each split are scored); "
                        "rename it")
    for section, (old, new, what) in RENAMED.items():
        entries = config.get(section)
        for name, entry in entries.items() if isinstance(entries, dict) else ():
            if isinstance(entry, dict) and old in entry:
                raise UserError(f"config: '{section}.{name}.{old}' is now '{section}.{name}.{new}' ({what}); "
                                "rename the key")


def check(config: dict[str, Any], schema_path: str | Path) -> None:
    """Validate `config` in place, filling in the schema's defaults; raise UserError for the first schema violation
    or for a rule the schema cannot express."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    bad_key = next((k for k in _keys(config) if not isinstance(k, str)), None)
    if bad_key is not None:
        raise UserError(f"config: key {short(bad_key)} is not text; names are text (quote it: \"{short(bad_key)}\")")
    _refuse_moved(config)
    _check_numbers(config, "")
    error = first_error(FillingValidator(schema), config)
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
    rows = config["row_filter"]
    if rows["z_min"] > rows["z_max"]:
        raise UserError(f"config: 'row_filter.z_min' ({rows['z_min']}) is larger than 'row_filter.z_max' ({rows['z_max']})")
    both = set(config["properties"]) & set(config["classifications"])
    if both:
        raise UserError(f"config: '{sorted(both)[0]}' is both in properties and in classifications; give them different names")
    named = set(config["baselines"]) & set(config["models"])
    if named:
        raise UserError(f"config: 'baselines.{sorted(named)[0]}' has a model's name; the tables name both in one column")
    if config["baselines"] and not fitted_on_train(config["protocols"]["run"]):
        raise UserError(f"config: 'baselines' are scored by zero_shot or few_shot (fitted on the train split); "
                        f"'protocols.run' has neither ({', '.join(config['protocols']['run'])})")
    _check_label_lists(config)
    try:  # catalogue references and expressions, before any file is read
        needed_columns(config)
    except UserError as error:
        raise UserError(f"config: {error}") from None


def _label_lists(config: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """Every `labels` list of a section (posteriors, budgets, representation) or of a section's entry
    (posteriors.joint), with its key: a new task section's list is checked without naming it here."""
    for name, section in config.items():
        if not isinstance(section, dict):
            continue
        if isinstance(section.get("labels"), list):
            yield f"{name}.labels", section["labels"]
        for key, entry in section.items():
            if isinstance(entry, dict) and isinstance(entry.get("labels"), list):
                yield f"{name}.{key}.labels", entry["labels"]


def _check_label_lists(config: dict[str, Any]) -> None:
    """The label lists of the task sections name the redshift or configured properties."""
    known = ["redshift", *config["properties"]]
    for key, names in _label_lists(config):
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UserError(f"config: '{key}' names {unknown[0]!r}, which is neither redshift nor a key of properties "
                            f"({', '.join(known)})")


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


def _keys(value: Any) -> Iterator[Any]:
    """Every mapping key in the config, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def check_against_data(config: dict[str, Any]) -> None:
    """Counts in the config against the data file, when it exists and reads as a survey (the demo's is simulated
    later; a file that does not read is named by the first step that opens it): no more embedding shards than
    validation rows (each is a job to plan), no query row beyond the split."""
    path = Path(config["dataset"]["path"])
    if not path.is_file():
        return
    from astroclip_eval.io.data import Survey

    try:
        with Survey(path) as survey:
            rows = survey.n_rows("valid")
    except UserError:
        return
    if config["embedding"]["shards"] > rows:
        raise UserError(f"config: 'embedding.shards' ({config['embedding']['shards']}) is more than the "
                        f"{rows:,} validation rows of {path}")
    beyond = [i for i in config["similarity"]["query_indices"] if i >= rows]
    if beyond:
        raise UserError(f"config: 'similarity.query_indices' holds {beyond[0]}, beyond the {rows:,} validation rows of "
                        f"{path} (rows count from 0)")
