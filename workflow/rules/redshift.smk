# Zero-shot kNN redshift, as a parameterised notebook executed with papermill.
import json


rule redshift_notebook:
    input:
        unpack(train_inputs),
        notebook=f"{NOTEBOOK_DIR}/redshift.ipynb",
        dataset=DATASET,
        image=f"{CACHE}/{{model}}/image_embeddings.pt",
        spectrum=f"{CACHE}/{{model}}/spectrum_embeddings.pt",
        valid=f"{CACHE}/valid_indices.pt",
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
        metrics=report(
            f"{RESULTS}/{{model}}/redshift_metrics.csv",
            caption="../report/redshift_metrics.rst",
            category="{model}",
            subcategory="Redshift",
            labels={"model": "{model}", "table": "bias, sigma_NMAD, outliers"},
        ),
        predictions=f"{RESULTS}/{{model}}/redshift_predictions.parquet",
    log:
        f"{LOGS}/redshift_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/redshift_notebook/{{model}}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,  # make fullsize: peak under 900 MiB at the published size
        gpu=DOWNSTREAM_GPUS,
    params:
        run=script_cmd("run_notebook.py"),
        parameters=lambda wc, input, output: json.dumps(
            {
                "model": wc.model,
                "dataset": input.dataset,
                "image_embeddings": input.image,
                "spectrum_embeddings": input.spectrum,
                "valid_indices": input.valid,
                "protocols": config["protocols"],
                "bootstrap": config["downstream"]["bootstrap"],
                "device": config["downstream"]["device"],
                "train_image_embeddings": input.get("train_image", ""),
                "train_spectrum_embeddings": input.get("train_spectrum", ""),
                "train_valid_indices": input.get("train_valid", ""),
                "z_max": config["valid"]["z_max"],
                "figure": output.figure,
                "table": output.table,
                "metrics_table": output.metrics,
                "predictions_table": output.predictions,
            }
        ),
        failed=f"{LOGS}/redshift_notebook/{{model}}.failed.ipynb",
    shell:
        NOTEBOOK_SHELL
