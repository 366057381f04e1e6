# Galaxy properties and classifications from the joined catalogues (catalogues.smk), only when the config names some.
import json


rule properties_notebook:
    input:
        unpack(train_label_inputs),
        notebook=f"{NOTEBOOK_DIR}/properties.ipynb",
        image=f"{CACHE}/{{model}}/image_embeddings.pt",
        spectrum=f"{CACHE}/{{model}}/spectrum_embeddings.pt",
        valid=f"{CACHE}/valid_indices.pt",
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
        parameters=lambda wc, input, output: json.dumps(
            {
                "model": wc.model,
                "image_embeddings": input.image,
                "spectrum_embeddings": input.spectrum,
                "valid_indices": input.valid,
                "labels": input.labels,
                "train_image_embeddings": input.get("train_image", ""),
                "train_spectrum_embeddings": input.get("train_spectrum", ""),
                "train_valid_indices": input.get("train_valid", ""),
                "train_labels": input.get("train_labels", ""),
                "properties": list(config["properties"]),
                "questions": list(config["classifications"]),
                "vote_fractions": [q for q, entry in config["classifications"].items() if entry["vote_fractions"]],
                "protocols": config["protocols"],
                "bootstrap": config["downstream"]["bootstrap"],
                "device": config["downstream"]["device"],
                **{
                    k: output[k]
                    for k in (
                        "property_table",
                        "class_table",
                        "property_figure",
                        "confusion_figure",
                        "property_predictions",
                        "class_predictions",
                    )
                },
            }
        ),
        failed=f"{LOGS}/properties_notebook/{{model}}.failed.ipynb",
    shell:
        f"OMP_NUM_THREADS={{threads}} {NOTEBOOK_SHELL}"
