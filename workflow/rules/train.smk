# Train the reference model for models with a `train` entry (the demo), like the reproduction's training script.
import json


def train_params(wildcards):
    return json.dumps({**config["train"], **config["models"][wildcards.model]["train"]})


rule train_model:
    input:
        DATASET,
    output:
        directory(f"{config['train_dir']}/astroclip_ckpt_{{model}}"),
    params:
        train=train_params,
    log:
        f"{LOGS}/train_model/{{model}}.log",
    benchmark:
        f"{BENCH}/train_model/{{model}}.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=lambda wc, attempt: 8000 * attempt,
        runtime=lambda wc, attempt: 120 * attempt,
    shell:
        "{PYTHON} {SCRIPTS}/train_model.py --dataset {input} --run-dir {output} "
        "--params '{params.train}' --log {log}"
