# Train the reference model for models with a `train` entry (the demo), like the reproduction's training script.
# The rule exists only for those models, so a user's own run directory is never planned as something to train.


if TRAINED:

    rule train_model:
        input:
            DATASET,
        output:
            directory(trained_run_dir(config["train_dir"], "{model}")),
        log:
            f"{LOGS}/train_model/{{model}}.log",
        benchmark:
            f"{BENCH}/train_model/{{model}}.tsv"
        wildcard_constraints:
            model="|".join(TRAINED),
        threads: 2
        resources:
            gpu=1,
            mem_mb=lambda wc, attempt: 8000 * attempt,
            runtime=lambda wc, attempt: 120 * attempt,
        params:
            cmd=script_cmd("train_model.py"),
            train=train_params,
        shell:
            "{params.cmd} --dataset {input:q} --run-dir {output:q} "
            "--plan {params.train:q} --threads {threads} --log {log:q}"
