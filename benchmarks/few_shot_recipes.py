"""The few-shot MLP's recipes side by side on a demo run's embeddings: the project's early-stopped recipe against the
earlier full-batch one (Adam 3e-3, 200 steps), every label and modality pair, over several seeds, with time.

    python benchmarks/few_shot_recipes.py WORKDIR [SEEDS]   # a directory where the demo ran (config/, data/, cache/)

A score is "within" when the two means differ by at most twice the larger of the two seeds' spreads. The README's
comparison (2026-12-06) is this script's output.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from astroclip_eval.io.config import check
from astroclip_eval.io.data import Survey
from astroclip_eval.io.files import SPLIT_PREFIXES, cached_splits, read_labels
from astroclip_eval.io.plan import Protocols
from astroclip_eval.tasks.downstream import evaluate_all
from astroclip_eval.tasks.protocols import RECIPES, Recipe
from astroclip_eval.tasks.redshift import evaluate

EARLIER = Recipe(torch.nn.GELU, dropout=0.0, lr=3e-3, weight_decay=1e-4, batch=2**62, epochs=200)


def scores(work: Path, model: str, recipe: str, seed: int, config: dict) -> list[dict]:
    """Every few_shot score of one model under one recipe and seed, as the redshift and property steps compute them."""
    with Survey(work / config["dataset"]["path"]) as survey:
        cached = cached_splits(work / "cache", model)
        splits = {split: (*found, survey.read(split, "redshifts")) for split, found in cached.items()}
    questions = list(config.get("classifications", {}))
    tables = {split: read_labels(str(work / f"cache/catalogues/{prefix}labels.csv"), questions)
              for split, prefix in SPLIT_PREFIXES.items()}
    (v_emb, v_rows, v_z), (t_emb, t_rows, t_z) = splits["valid"], splits["train"]
    few_shot = Protocols.of({**config["protocols"], "run": ["few_shot"], "few_shot_seed": seed, "few_shot_recipe": recipe})
    r2, _, _ = evaluate(v_emb, v_z, v_rows, few_shot, (t_emb, t_z, t_rows))
    prop, cls, _, _ = evaluate_all(list(config.get("properties", {})), questions, v_emb, tables["valid"], v_rows, t_emb,
                                   tables["train"], t_rows, few_shot)
    rows = [{"label": "redshift", **r} for r in r2.to_dict("records")]
    rows += [{"label": r["property"], **r} for r in prop.to_dict("records")]
    rows += [{"label": r["question"], **r, "r2": r["accuracy"]} for r in cls.to_dict("records")]
    return [{k: r[k] for k in ("label", "query", "target", "r2")} for r in rows]


def main() -> None:
    work, seeds = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5
    config = yaml.safe_load((work / "config/config.yaml").read_text())
    check(config, Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml")  # its defaults filled in
    RECIPES["earlier"] = EARLIER
    out = []
    for model in config["models"]:
        for recipe in ("earlier", "project"):
            for seed in range(seeds):
                start = time.perf_counter()
                found = scores(work, model, recipe, seed, config)
                wall = time.perf_counter() - start
                out += [{"model": model, "recipe": recipe, "seed": seed, "wall": wall, **r} for r in found]
                print(f"{model} {recipe} seed {seed}: {wall:.1f} s", file=sys.stderr, flush=True)
    frame = pd.DataFrame(out)
    table = frame.groupby(["model", "label", "query", "target", "recipe"])["r2"].agg(["mean", "std"]).unstack("recipe")
    table.columns = [f"{stat}_{recipe}" for stat, recipe in table.columns]
    change = table["mean_project"] - table["mean_earlier"]
    spread = np.maximum(table["std_project"], table["std_earlier"])
    table["verdict"] = np.where(change.abs() <= 2 * spread, "within", np.where(change > 0, "higher", "lower"))
    pd.set_option("display.width", 200)
    print(table.round(3).to_string())
    in_modal = pd.Series(table.index.get_level_values("query") == table.index.get_level_values("target"),
                         index=table.index, name="in_modal")
    print(table.groupby([table.index.get_level_values("model"), in_modal])["verdict"].value_counts().unstack(fill_value=0))
    print(frame.groupby(["model", "recipe"])["wall"].mean().round(1).rename("seconds per seed").to_string())


if __name__ == "__main__":
    main()
