# One results file per model and task kind with tables: its scores and main scores with their intervals, the
# checkpoint's sha256, the data file, the harness version, the config's hash and the step's time (for the scoreboard).

RESULT_KINDS = {kind.name: kind for kind in KINDS if kind.tables}


wildcard_constraints:
    kind="|".join(RESULT_KINDS),


def results_inputs(wildcards):
    """The kind's per-model tables of this model, and what says how they were measured."""
    kind = RESULT_KINDS[wildcards.kind]
    outputs = getattr(rules, kind.rule).output
    return {
        **{f"table_{t.name}": expand(outputs[t.output], model=wildcards.model) for t in kind.tables},
        "checkpoint": expand(rules.promote_checkpoint.output.meta, model=wildcards.model),
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
            "valid": input.valid[0],
            "config": input.settings,
            "dataset": input.dataset,
            "schema": input.schema,
            "benchmark": f"{BENCH}/{kind.rule}/{wildcards.model}.tsv",  # the step's time, when recorded
            "output": output[0],
        }
    )


rule results_file:
    input:
        unpack(results_inputs),
    output:
        f"{RESULTS}/{{model}}/results/{{kind}}.json",
    log:
        f"{LOGS}/results_file/{{model}}_{{kind}}.log",
    benchmark:
        f"{BENCH}/results_file/{{model}}_{{kind}}.tsv"
    localrule: True
    params:
        cmd=script_cmd("results_file.py"),
        plan=results_plan,
    shell:
        "{params.cmd} --plan {params.plan:q} --log {log:q}"
