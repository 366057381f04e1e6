# Zero-shot kNN redshift, as a parameterised notebook executed with papermill.


rule redshift_notebook:
    input:
        unpack(train_inputs),
        **EMBEDDED,
        notebook=f"{NOTEBOOK_DIR}/redshift.ipynb",
        dataset=DATASET,
    output:
        notebook=f"{RESULTS}/{{model}}/redshift.ipynb",
        figure=report(
            f"{RESULTS}/{{model}}/redshift_knn_regression.png",
            caption="../report/redshift_figure.rst",
            category="{model}",
            subcategory="Redshift",
            labels={"model": "{model}", "figure": "kNN redshift"},
        ),
        table=report(
            f"{RESULTS}/{{model}}/redshift_r2.csv",
            caption="../report/redshift_table.rst",
            category="{model}",
            subcategory="Redshift",
            labels={"model": "{model}", "table": "R^2"},
        ),
        metrics_table=report(
            f"{RESULTS}/{{model}}/redshift_metrics.csv",
            caption="../report/redshift_metrics.rst",
            category="{model}",
            subcategory="Redshift",
            labels={"model": "{model}", "table": "bias, sigma_NMAD, outliers"},
        ),
        predictions_table=f"{RESULTS}/{{model}}/redshift_predictions.parquet",
    log:
        f"{LOGS}/redshift_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/redshift_notebook/{{model}}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,  # make fullsize: peak under 900 MiB at the published size
        gpu=DOWNSTREAM_GPUS,
    params:
        run=script_cmd("run_notebook.py"),
        parameters=notebook_plan(
            optional=TRAIN_EMBEDDED,
            protocols=config["protocols"],
            bootstrap=config["downstream"]["bootstrap"],
            device=config["downstream"]["device"],
            z_max=config["row_filter"]["z_max"],
        ),
        failed=f"{LOGS}/redshift_notebook/{{model}}.failed.ipynb",
    shell:
        NOTEBOOK_SHELL
