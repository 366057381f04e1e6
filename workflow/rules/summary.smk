# Across models: every running task kind's tables stacked, their figures against embedding dimension, and the
# report's landing page, all as the table of task kinds (astroclip_eval/tasks/kinds.py) declares them.
import json


rule settings:
    output:
        f"{RESULTS}/summary/config.json",
    log:
        f"{LOGS}/settings.log",
    benchmark:
        f"{BENCH}/settings.tsv"
    localrule: True
    params:
        config=json.dumps(config),  # a changed setting rewrites the file, and the overview after it
    run:
        from astroclip_eval.io.atomic import write_json

        write_json(output[0], config)  # the config as validated, the schema's defaults filled in


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
    shared = {
        f"shared_{key}": expand(getattr(rules, rule).output[output], split="")
        for kind in KINDS
        for key, (rule, output, _) in kind.shared.items()
    }
    return {
        **results,
        **predictions,
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
    }
    for t in SUMMARY_TABLES:
        items = [(t.name, f"{t.name}.csv", t.caption, f"{t.title} (table)")]
        if t.figure:
            items.append(
                (
                    f"{t.name}_figure",
                    f"{t.name}_vs_embedding_dim.png",
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
        }
    )


rule summary:
    input:
        unpack(summary_inputs),
    output:
        **summary_outputs(),
    log:
        f"{LOGS}/summary.log",
    benchmark:
        f"{BENCH}/summary.tsv"
    localrule: True
    params:
        cmd=script_cmd("summary.py"),
        plan=summary_plan,
    shell:
        "{params.cmd} --plan {params.plan:q} --log {log:q}"
