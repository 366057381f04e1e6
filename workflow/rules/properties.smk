# Galaxy properties and classifications from the joined catalogues (catalogues.smk), only when the config names some.


rule properties_notebook:
    input:
        unpack(train_label_inputs),
        **EMBEDDED,
        notebook=f"{NOTEBOOK_DIR}/properties.ipynb",
        labels=f"{CACHE}/catalogues/labels.csv",
    output:
        notebook=f"{RESULTS}/{{model}}/properties.ipynb",
        property_table=report(
            f"{RESULTS}/{{model}}/properties_r2.csv",
            caption="../report/properties_table.rst",
            category="{model}",
            subcategory="Properties and morphology",
            labels={"model": "{model}", "table": "property R^2"},
        ),
        class_table=report(
            f"{RESULTS}/{{model}}/classification.csv",
            caption="../report/classification_table.rst",
            category="{model}",
            subcategory="Properties and morphology",
            labels={"model": "{model}", "table": "classification"},
        ),
        property_figure=report(
            f"{RESULTS}/{{model}}/properties_true_vs_predicted.png",
            caption="../report/properties_figure.rst",
            category="{model}",
            subcategory="Properties and morphology",
            labels={"model": "{model}", "figure": "true vs predicted"},
        ),
        confusion_figure=report(
            f"{RESULTS}/{{model}}/classification_confusion.png",
            caption="../report/classification_figure.rst",
            category="{model}",
            subcategory="Properties and morphology",
            labels={"model": "{model}", "figure": "confusion matrices"},
        ),
        property_predictions=f"{RESULTS}/{{model}}/properties_predictions.parquet",
        class_predictions=f"{RESULTS}/{{model}}/classification_predictions.parquet",
    log:
        f"{LOGS}/properties_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/properties_notebook/{{model}}.tsv"
    threads: 4  # torch's searches and networks; the kernel is told through OMP_NUM_THREADS
    resources:
        # make bench, published size (39,599 x 158,396 rows, 5 properties, 3 protocols): 2.8 min and 1.9 GiB on
        # 2 cores (2026-12-06; 39.5 min before the float32 screen and the early-stopped MLP)
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=DOWNSTREAM_GPUS,
    params:
        run=script_cmd("run_notebook.py"),
        parameters=notebook_plan(
            optional=(*TRAIN_EMBEDDED, "train_labels"),
            properties=list(config["properties"]),
            questions=list(config["classifications"]),
            vote_fractions=[q for q, entry in config["classifications"].items() if entry["vote_fractions"]],
            protocols=config["protocols"],
            bootstrap=config["downstream"]["bootstrap"],
            device=config["downstream"]["device"],
        ),
        failed=f"{LOGS}/properties_notebook/{{model}}.failed.ipynb",
    shell:
        f"OMP_NUM_THREADS={{threads}} {NOTEBOOK_SHELL}"
