"""Names and rules that both the package and the workflow's planning use, in a module that imports nothing heavy:
the Snakefile imports it for every `snakemake` call, dry runs included, so torch must not load here."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

MODALITIES = ("spectrum", "image")  # the two embeddings of a galaxy, in the order every table lists them
# Similarity search modes: name -> (query modality, target modality)
SIMILARITY_MODES = {
    "sp-sp": ("spectrum", "spectrum"),
    "im-im": ("image", "image"),
    "sp-im": ("spectrum", "image"),
    "im-sp": ("image", "spectrum"),
}
AUTO_LOADER = "auto"  # `models.<name>.loader`: the built-in model the checkpoint holds


def fitted_on_train(protocols: list[str] | tuple[str, ...]) -> list[str]:
    """The protocols fitted on the train split (all but 'reproduction'): they need its embeddings."""
    return [p for p in protocols if p != "reproduction"]


@dataclass(frozen=True)
class Protocols:
    """The config's `protocols` section, by which every label (the redshift, each property and question, the
    baselines' and the budgets') is scored: its keys are these fields, named alike from the schema to the code that
    reads them; the defaults live in the schema, so the section is read only after validation fills them in."""

    run: tuple[str, ...]  # which protocols run, in order
    reproduction_neighbours: int | list[int]  # k of the reproduction's kNN (a list: each k a protocol column)
    exclude_self: bool  # leave a query out of its own in-modal neighbours (reproduction)
    zero_shot_neighbours: int | list[int]  # k of zero_shot (a list: each k a protocol column)
    few_shot_seed: int
    few_shot_recipe: str  # 'project' or 'paper' (protocols.Recipe)

    @classmethod
    def of(cls, section: dict[str, Any]) -> Protocols:
        """From the validated section (or its JSON in a plan): every key, none other."""
        return cls(**{f.name: tuple(section[f.name]) if f.name == "run" else section[f.name] for f in fields(cls)})

    @property
    def trained(self) -> list[str]:
        """The protocols fitted on the train split, which need its embeddings."""
        return fitted_on_train(self.run)

    def neighbours(self, protocol: str) -> int | list[int] | None:
        """The k setting of a kNN protocol (None for one without neighbours)."""
        return getattr(self, KNN_KEYS[protocol]) if protocol in KNN_KEYS else None


# The kNN protocols and the config key of their k (protocols.<key>): one number, or a list to run each k
KNN_KEYS = {"reproduction": "reproduction_neighbours", "zero_shot": "zero_shot_neighbours"}


def protocol_runs(protocol: str, neighbours: int | list[int] | None = None) -> list[tuple[str, int | None]]:
    """(column name, k) for each k a protocol runs at: one number keeps the bare name ('zero_shot'), a list names
    each k ('zero_shot@16', 'zero_shot@64'), smallest first; a protocol without k runs once."""
    if isinstance(neighbours, list):
        return [(f"{protocol}@{k}", k) for k in sorted(set(neighbours))]
    return [(protocol, neighbours)]


def base_protocol(name: str) -> str:
    """The protocol a column name runs ('zero_shot@16' -> 'zero_shot')."""
    return name.partition("@")[0]


def protocol_k(name: str, protocols: Protocols) -> int | None:
    """The k a column name's kNN ran at (from its name, else from the protocols' settings); None for a protocol
    without neighbours."""
    base, _, k = name.partition("@")
    if k:
        return int(k)
    value = protocols.neighbours(base)
    return value if isinstance(value, int) else None


def trained_run_dir(train_dir: str, model: str) -> str:
    """Where the train rule writes a model's run directory (the reproduction's `out/astroclip_ckpt_<id>` naming)."""
    return f"{train_dir}/astroclip_ckpt_{model}"
