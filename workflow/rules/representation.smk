# The embedding space itself, per model on the valid validation rows: rankme and the singular-value spectrum,
# uniformity, alignment, the modality gap, mutual kNN, hubness and the labels' consistency over neighbours.

REPRESENTATION_LABELS = named_labels("representation")


rule representation:
    input:
        **EMBEDDED,
        **{k: v for k, v in label_files(REPRESENTATION_LABELS).items() if k == "labels"},  # the validation split's
        dataset=DATASET,
    output:
        table=report(
            f"{RESULTS}/{{model}}/representation.csv",
            caption="../report/representation_table.rst",
            category="{model}",
            subcategory="Embedding space",
            labels={"model": "{model}", "table": "the embedding space"},
        ),
        spectrum=report(
            f"{RESULTS}/{{model}}/representation_spectrum.csv",
            caption="../report/representation_spectrum.rst",
            category="{model}",
            subcategory="Embedding space",
            labels={"model": "{model}", "table": "singular values"},
        ),
        figure=report(
            f"{RESULTS}/{{model}}/representation_spectrum.png",
            caption="../report/representation_figure.rst",
            category="{model}",
            subcategory="Embedding space",
            labels={"model": "{model}", "figure": "singular values"},
        ),
    log:
        f"{LOGS}/representation/{{model}}.log",
    benchmark:
        f"{BENCH}/representation/{{model}}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 3000 * attempt,  # make bench, published size: 750 MiB at 128-d, 1.8 GiB at 1,024-d
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=DOWNSTREAM_GPUS,
    params:
        cmd=script_cmd("representation.py"),
        plan=notebook_plan(
            optional=("labels",),
            settings={**config["representation"], "labels": REPRESENTATION_LABELS},
            bootstrap=config["downstream"]["bootstrap"],
            device=config["downstream"]["device"],
        ),
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} --plan {params.plan:q} --log {log:q}"
