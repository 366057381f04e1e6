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


def trained_run_dir(train_dir: str, model: str) -> str:
    """Where the train rule writes a model's run directory (the reproduction's `out/astroclip_ckpt_<id>` naming)."""
    return f"{train_dir}/astroclip_ckpt_{model}"
