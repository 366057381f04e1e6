"""Names and rules that both the package and the workflow's planning use, in a module that imports nothing heavy:
the Snakefile imports it for every `snakemake` call, dry runs included, so torch must not load here."""

from __future__ import annotations

# Similarity search modes: name -> (query modality, target modality)
SIMILARITY_MODES = {
    "sp-sp": ("spectrum", "spectrum"),
    "im-im": ("image", "image"),
    "sp-im": ("spectrum", "image"),
    "im-sp": ("image", "spectrum"),
}
AUTO_LOADER = "auto"  # `models.<name>.loader`: the built-in model the checkpoint holds


def fitted_on_train(protocols: list[str]) -> list[str]:
    """The redshift protocols fitted on the train split (all but 'reproduction'): they need its embeddings."""
    return [p for p in protocols if p != "reproduction"]


# The kNN protocols and the config key of their k (redshift.<key>): one number, or a list to run each k
KNN_KEYS = {"reproduction": "n_neighbours", "zero_shot": "zero_shot_neighbours"}


def protocol_runs(protocol: str, neighbours: int | list[int] | None = None) -> list[tuple[str, int | None]]:
    """(column name, k) for each k a protocol runs at: one number keeps the bare name ('zero_shot'), a list names
    each k ('zero_shot@16', 'zero_shot@64'), smallest first; a protocol without k runs once."""
    if isinstance(neighbours, list):
        return [(f"{protocol}@{k}", k) for k in sorted(set(neighbours))]
    return [(protocol, neighbours)]


def base_protocol(name: str) -> str:
    """The protocol a column name runs ('zero_shot@16' -> 'zero_shot')."""
    return name.partition("@")[0]


def protocol_k(name: str, redshift: dict) -> int | None:
    """The k a column name's kNN ran at (from its name, else from the config's redshift section); None for a
    protocol without neighbours."""
    base, _, k = name.partition("@")
    if k:
        return int(k)
    value = redshift.get(KNN_KEYS.get(base, ""))
    return value if isinstance(value, int) else None


def trained_run_dir(train_dir: str, model: str) -> str:
    """Where the train rule writes a model's run directory (the reproduction's `out/astroclip_ckpt_<id>` naming)."""
    return f"{train_dir}/astroclip_ckpt_{model}"
