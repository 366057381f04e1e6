# Label budgets: each protocol's R^2 against the share of the train split's labels it is fitted on, only when the
# config has a budgets section (seeded nested subsets, repeats, the redshift and the properties named).

BUDGET_LABELS = named_labels("budgets")


rule budgets_notebook:
    input:
        **label_files(BUDGET_LABELS),
        **EMBEDDED,
        **TRAIN_EMBEDDED,
        notebook=f"{NOTEBOOK_DIR}/budgets.ipynb",
        dataset=DATASET,
    output:
        notebook=f"{RESULTS}/{{model}}/budgets.ipynb",
        table=report(
            f"{RESULTS}/{{model}}/budgets.csv",
            caption="../report/budgets_table.rst",
            category="{model}",
            subcategory="Label budgets",
            labels={"model": "{model}", "table": "R^2 against the labels used"},
        ),
        figure=report(
            f"{RESULTS}/{{model}}/budgets.png",
            caption="../report/budgets_figure.rst",
            category="{model}",
            subcategory="Label budgets",
            labels={"model": "{model}", "figure": "R^2 against the labels used"},
        ),
    log:
        f"{LOGS}/budgets_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/budgets_notebook/{{model}}.tsv"
    threads: 2
    resources:
        # make bench, published size (39,599 x 158,396, 128-d): 171 s and 2,682 MiB per label with 3 repeats on
        # 2 cores (2026-12-06); six labels with 5 repeats: about 29 minutes
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
        gpu=DOWNSTREAM_GPUS,
    params:
        run=script_cmd("run_notebook.py"),
        parameters=notebook_plan(
            optional=("labels", "train_labels"),
            settings=config["budgets"],
            protocols=config["protocols"],
            properties=[p for p in config["properties"] if p in BUDGET_LABELS],
            redshift="redshift" in BUDGET_LABELS,
            device=config["downstream"]["device"],
        ),
        failed=f"{LOGS}/budgets_notebook/{{model}}.failed.ipynb",
    shell:
        f"OMP_NUM_THREADS={{threads}} {NOTEBOOK_SHELL}"
