# One results file per model and task kind with tables: its scores and main scores with their intervals, the
# checkpoint's sha256, the data file, the harness version, the config's hash and the step's time (for the scoreboard).


wildcard_constraints:
    kind="|".join(RESULT_KINDS),


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
