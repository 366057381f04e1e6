# Paths and input functions shared by the rules (every config check is in astroclip_eval/io/config.py).
import json
import os
import shlex

from astroclip_eval.tasks.kinds import enabled, tables
from astroclip_eval.io.definitions import needed_columns
from astroclip_eval.io.plan import SIMILARITY_MODES, fitted_on_train, trained_run_dir

CACHE = config["cache_dir"]
RESULTS = config["results_dir"]
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
DATASET = config["dataset"]["path"]
SHARDS = config["embedding"]["shards"]
MODELS = list(config["models"])
TRAINED = [m for m in MODELS if "train" in config["models"][m]]
KINDS = enabled(config)  # the task kinds this config runs (astroclip_eval/tasks/kinds.py), each with its rule file
ENABLED = {kind.name for kind in KINDS}
SUMMARY_TABLES = tables(config)  # every kind's tables across models
NOTEBOOKS = [kind.name for kind in KINDS if kind.notebook]  # shown as HTML pages by notebooks.smk
RESULT_KINDS = {kind.name: kind for kind in KINDS if kind.tables}  # a results file per model each
LABELLED = "properties" in ENABLED  # catalogues are joined: the explorer colours by their labels
BASELINES = list(config["baselines"])  # feature sets scored as an embedding (workflow/rules/baselines.smk)
# A baseline's tables (named as the summary's tables it joins) and the predictions file each one's paired
# differences read
BASELINE_OUTPUTS = {
    "redshift_r2": "redshift_predictions",
    "redshift_metrics": "redshift_predictions",
    "properties_r2": "properties_predictions",
    "classification": "classification_predictions",
}
# downstream.device other than cpu: the redshift and property notebooks ask SLURM for one GPU (sbatch --gpus=1)
DOWNSTREAM_GPUS = 0 if config["downstream"]["device"] == "cpu" else 1


wildcard_constraints:
    model="|".join(MODELS),
    baseline="|".join(BASELINES) or "(?!)",  # none configured: matches nothing
    notebook="|".join(NOTEBOOKS),
    shard=r"\d+",
    split="|train_",


def run_dir(model):
    """Where a model's checkpoints are: its own run dir, one file, or the run dir the train rule writes."""
    entry = config["models"][model]
    if "train" in entry:
        return trained_run_dir(config["train_dir"], model)
    return entry.get("checkpoint_dir") or entry["checkpoint"]


def split_name(wildcards):
    """The {split} wildcard ('' or 'train_') as the split's name for the scripts."""
    return "train" if wildcards.split else "valid"


def embedding_shards(wildcards):
    """A model's shard files of one split in row order."""
    return [f"{CACHE}/{wildcards.model}/embedding_shards/{wildcards.split}{i}-of-{SHARDS}.pt" for i in range(SHARDS)]


# A model's embeddings and valid rows of each split, by the names the notebooks' parameters give them
EMBEDDED = {
    "image_embeddings": f"{CACHE}/{{model}}/image_embeddings.pt",
    "spectrum_embeddings": f"{CACHE}/{{model}}/spectrum_embeddings.pt",
    "valid_indices": f"{CACHE}/valid_indices.pt",
}
TRAIN_EMBEDDED = {
    "train_image_embeddings": f"{CACHE}/{{model}}/train_image_embeddings.pt",
    "train_spectrum_embeddings": f"{CACHE}/{{model}}/train_spectrum_embeddings.pt",
    "train_valid_indices": f"{CACHE}/train_valid_indices.pt",
}


def train_inputs(wildcards):
    """The train split's embeddings and valid rows, only when a protocol needs them."""
    if not fitted_on_train(config["protocols"]["run"]):
        return {}
    return {name: path.format(model=wildcards.model) for name, path in TRAIN_EMBEDDED.items()}


def named_labels(section, names=None):
    """The numeric labels a task section names (its `labels`: the redshift and any property; all of them when it
    names none; or `names`, a list under another key of it; io/config.py checked each exists)."""
    return config[section].get("labels", ["redshift", *config["properties"]]) if names is None else names


def label_files(names):
    """Both splits' joined labels, when one of `names` is a property (the redshift is in the data file)."""
    if not set(names) & set(config["properties"]):
        return {}
    return {"labels": f"{CACHE}/catalogues/labels.csv", "train_labels": f"{CACHE}/catalogues/train_labels.csv"}


def simulated_catalogues():
    """The catalogues the demo's simulator writes beside the survey file."""
    from astroclip_eval.demo.catalogues import GALAXY_ZOO_FILE, PROVABGS_FILE

    return [os.path.join(os.path.dirname(DATASET), name) for name in (PROVABGS_FILE, GALAXY_ZOO_FILE)]


def catalogue_files(wildcards):
    """The files of the catalogues the labels read (a simulated one is made by the simulate rule)."""
    return {f"catalogue_{name}": config["catalogues"][name]["path"] for name in needed_columns(config)}


def label_definitions():
    """What the joins depend on, as JSON: the catalogues, the labels without their references (which only the
    overview shows), so adding a reference does not join the catalogues again, and the baselines' columns."""
    labels = {
        kind: {name: {k: v for k, v in entry.items() if k != "references"} for name, entry in config[kind].items()}
        for kind in ("properties", "classifications")
    }
    baselines = {name: {k: v for k, v in entry.items() if k != "label"} for name, entry in config["baselines"].items()}
    return json.dumps({"catalogues": config["catalogues"], **labels, "baselines": baselines})


def train_label_inputs(wildcards):
    """The train split's embeddings, valid rows and labels, only when a protocol is fitted on it."""
    inputs = train_inputs(wildcards)
    return {**inputs, "train_labels": f"{CACHE}/catalogues/train_labels.csv"} if inputs else {}


def explorer_labels(wildcards):
    """The joined catalogues' labels, to colour the explorer's map by them, when the config names any."""
    return {"labels": f"{CACHE}/catalogues/labels.csv"} if LABELLED else {}


def promote_input(wildcards):
    return run_dir(wildcards.model)


def all_outputs():
    """The default target: every model's results of every running task kind and the summary, named by the rules that
    write them."""
    per_model = [rules.promote_checkpoint.output.meta, *[o for kind in KINDS for o in getattr(rules, kind.rule).output]]
    return [
        *expand(rules.valid_indices.output.summary, split=""),
        *expand(per_model, model=MODELS),
        *expand(rules.notebook_html.output, model=MODELS, notebook=NOTEBOOKS),
        *rules.summary.output,
    ]


def notebook_plan(optional=(), **settings):
    """A notebook rule's parameters (JSON, the shell line's --plan): its model, every input and output but the
    notebook by the rule's own name for it (the notebook's parameters cell uses the same names; outputs whose names
    are not identifiers, such as a figure per search mode, are the notebook's own to name), "" for each `optional`
    input the config does not need, and `settings` (config sections and values, by their config names)."""

    def plan(wildcards, input, output):
        files = {k: v for k, v in [*input.items(), *output.items()] if k != "notebook" and k.isidentifier()}
        return json.dumps({"model": wildcards.model, **dict.fromkeys(optional, ""), **files, **settings})

    return plan


# The one shell line that executes a notebook with papermill; its params are run, parameters (JSON, passed as --plan) and failed
# (where a failing notebook is kept for reading), its input and output both named notebook.
NOTEBOOK_SHELL = (
    "{params.run} {input.notebook:q} {output.notebook:q} --plan {params.parameters:q} "
    "--failed-copy {params.failed:q} --log {log:q}"
)


def quoted(paths):
    """Paths as shell words, for arguments built in params (what `{input:q}` does in a shell line)."""
    return " ".join(shlex.quote(str(p)) for p in paths)


def script_cmd(name):
    """The command line that runs one of workflow/scripts with the workflow's interpreter."""
    return f"{shlex.quote(PYTHON)} {shlex.quote(f'{SCRIPTS}/{name}')}"


def train_params(wildcards):
    return json.dumps({**config["train"], **config["models"][wildcards.model]["train"], **config["row_filter"]})


def expected_dim_args(wildcards):
    """--model (for messages) and --expected-dim when the entry declares a dimension (trained models always do)."""
    entry = config["models"][wildcards.model]
    dim = entry.get("embedding_dim") or entry.get("train", {}).get("embedding_dim")
    return f"--model {wildcards.model}" + (f" --expected-dim {dim}" if dim else "")


def embed_mem_mb(wildcards, input, attempt):
    """Memory of an embed job: 1 GiB (the step peaked at 783 MiB in `make fullsize`) plus twice the promoted
    checkpoint (weights, and what loading it holds), growing with the attempt. Before promotion the file is missing:
    Snakemake then shows <TBD> and evaluates this when the job is ready."""
    return int(1024 + 2 * os.path.getsize(input.ckpt) / 2**20) * attempt


def results_inputs(wildcards):
    """The kind's per-model tables of this model, and what says how they were measured."""
    kind = RESULT_KINDS[wildcards.kind]
    outputs = getattr(rules, kind.rule).output
    return {
        **{f"table_{t.name}": expand(outputs[t.output], model=wildcards.model) for t in kind.tables},
        "checkpoint": expand(rules.promote_checkpoint.output.meta, model=wildcards.model),
        "embedded": expand(rules.merge_embeddings.output.provenance, model=wildcards.model, split=""),
        "valid": expand(rules.valid_indices.output.summary, split=""),
        "settings": rules.settings.output[0],
        "dataset": DATASET,
        "schema": f"{workflow.basedir}/workflow/schemas/results.schema.yaml",
    }


def results_plan(wildcards, input, output):
    kind = RESULT_KINDS[wildcards.kind]
    return json.dumps(
        {
            "model": wildcards.model,
            "kind": kind.name,
            "tables": {t.name: input[f"table_{t.name}"][0] for t in kind.tables},
            "checkpoint": input.checkpoint[0],
            "embedded": input.embedded[0],
            "valid": input.valid[0],
            "config": input.settings,
            "dataset": input.dataset,
            "schema": input.schema,
            "benchmark": f"{BENCH}/{kind.rule}/{wildcards.model}.tsv",  # the step's time, when recorded
            "output": output[0],
        }
    )


def summary_inputs(wildcards):
    """Every model's results file of each running kind with tables, the predictions files its paired comparisons
    read, the kinds' shared files, and what every page shows."""
    results = {
        f"results_{kind}": expand(rules.results_file.output[0], model=MODELS, kind=kind) for kind in RESULT_KINDS
    }
    predictions = {
        f"predictions_{t.name}": expand(getattr(rules, kind.rule).output[t.predictions], model=MODELS)
        for kind in RESULT_KINDS.values()
        for t in kind.tables
        if t.predictions
    }
    baselines = {
        f"baseline_{t.name}": expand(rules.baseline.output[t.name], baseline=BASELINES)
        for t in SUMMARY_TABLES
        if t.name in BASELINE_OUTPUTS
    }
    baseline_predictions = {
        f"baselinepredictions_{t.name}": expand(rules.baseline.output[BASELINE_OUTPUTS[t.name]], baseline=BASELINES)
        for t in SUMMARY_TABLES
        if t.name in BASELINE_OUTPUTS
    }
    shared = {
        f"shared_{key}": expand(getattr(rules, rule).output[output], split="")
        for kind in KINDS
        for key, (rule, output, _) in kind.shared.items()
    }
    return {
        **results,
        **predictions,
        **baselines,
        **baseline_predictions,
        **shared,
        "embeddings": expand(rules.merge_embeddings.output.provenance, model=MODELS, split=""),
        "checkpoints": expand(rules.promote_checkpoint.output.meta, model=MODELS),
        "valid": expand(rules.valid_indices.output.summary, split=""),
        "settings": rules.settings.output[0],
        "schema": f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
    }


def summary_outputs():
    """The overview, then per table across models its CSV and its figure, numbered in the report's Summary."""
    outputs = {
        "overview": report(
            f"{RESULTS}/summary/overview.html",
            caption="../report/overview.rst",
            category="Summary",
            labels={"item": "1. overview (start here)"},
        ),
        "scoreboard": report(
            f"{RESULTS}/summary/scoreboard.csv",
            caption="../report/summary_scoreboard.rst",
            category="Summary",
            labels={"item": "2. scoreboard (table)"},
        ),
        "comparisons": report(
            f"{RESULTS}/summary/comparisons.csv",
            caption="../report/summary_comparisons.rst",
            category="Summary",
            labels={"item": "3. best model against the next (table)"},
        ),
        "references": report(
            f"{RESULTS}/summary/references.csv",
            caption="../report/summary_references.rst",
            category="Summary",
            labels={"item": "4. against references (table)"},
        ),
        "references_figure": report(
            f"{RESULTS}/summary/references.png",
            caption="../report/summary_references_figure.rst",
            category="Summary",
            labels={"item": "5. against references (figure)"},
        ),
        "against_baselines": report(
            f"{RESULTS}/summary/against_baselines.csv",
            caption="../report/summary_against_baselines.rst",
            category="Summary",
            labels={"item": "6. each model against the baselines (table)"},
        ),
    }
    for t in SUMMARY_TABLES:
        items = [(t.name, f"{t.name}.csv", t.caption, f"{t.title} (table)")]
        if t.figure:
            items.append(
                (
                    f"{t.name}_figure",
                    t.figure_file.format(name=t.name),
                    t.figure_caption,
                    f"{t.title} against embedding dimension",
                )
            )
        for key, name, caption, title in items:
            outputs[key] = report(
                f"{RESULTS}/summary/{name}",
                caption=f"../report/{caption}",
                category="Summary",
                labels={"item": f"{len(outputs) + 1}. {title}"},
            )
    return outputs


def summary_plan(wildcards, input, output):
    """The summary script's one argument: every file it reads and writes, by what it is."""
    tables = {t.name: {"output": output[t.name], "figure": output.get(f"{t.name}_figure")} for t in SUMMARY_TABLES}
    named = lambda prefix: {k.removeprefix(prefix): list(input[k]) for k in input.keys() if k.startswith(prefix)}
    return json.dumps(
        {
            "models": MODELS,
            "results": named("results_"),
            "predictions": named("predictions_"),
            "baselines": BASELINES,
            "baseline_tables": named("baseline_"),
            "baseline_predictions": named("baselinepredictions_"),
            "tables": tables,
            "shared": {k: v[0] for k, v in named("shared_").items()},
            "embeddings": list(input.embeddings),
            "checkpoints": list(input.checkpoints),
            "valid": input.valid[0],
            "config": input.settings,
            "schema": input.schema,
            "overview": output.overview,
            "scoreboard": output.scoreboard,
            "comparisons": output.comparisons,
            "references": output.references,
            "references_figure": output.references_figure,
            "against_baselines": output.against_baselines,
        }
    )
