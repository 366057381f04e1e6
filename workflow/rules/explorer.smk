# The galaxy explorer: one self-contained HTML page per model (maps of its embeddings, hover, neighbours on click).
import json


rule explorer:
    input:
        unpack(explorer_labels),
        dataset=DATASET,
        image=f"{CACHE}/{{model}}/image_embeddings.pt",
        spectrum=f"{CACHE}/{{model}}/spectrum_embeddings.pt",
        valid=f"{CACHE}/valid_indices.pt",
    output:
        report(
            f"{RESULTS}/{{model}}/explorer.html",
            caption="../report/explorer.rst",
            category="{model}",
            subcategory="Explorer",
            labels={"model": "{model}", "page": "galaxy explorer"},
        ),
    log:
        f"{LOGS}/explorer/{{model}}.log",
    benchmark:
        f"{BENCH}/explorer/{{model}}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 3000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    params:
        cmd=script_cmd("build_explorer.py"),
        labels=lambda wc, input: f"--labels {shlex.quote(input.labels)}" if LABELLED else "",
        settings=json.dumps({**config["explorer"], **config["similarity"], "classes": list(config["classifications"])}),
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} --model {wildcards.model:q} --dataset {input.dataset:q} "
        "--image {input.image:q} --spectrum {input.spectrum:q} --valid {input.valid:q} {params.labels} "
        "--plan {params.settings:q} --output {output:q} --log {log:q}"
