# Similarity search (four modes) and cross-modal retrieval, as a parameterised notebook executed with papermill.
import json


rule similarity_notebook:
    input:
        notebook=f"{NOTEBOOK_DIR}/similarity.ipynb",
        dataset=DATASET,
        image=f"{CACHE}/{{model}}/image_embeddings.pt",
        spectrum=f"{CACHE}/{{model}}/spectrum_embeddings.pt",
        valid=f"{CACHE}/valid_indices.pt",
    output:
        **{
            f"{kind}_{mode}": report(
                f"{RESULTS}/{{model}}/similarity_{kind}_{mode}.png",
                caption=f"../report/similarity_{kind}.rst",
                category="{model}",
                subcategory="Similarity",
                labels={"model": "{model}", "figure": f"{kind} {mode}"},
            )
            for kind in ("images", "spectra")
            for mode in SIMILARITY_MODES
        },
        notebook=f"{RESULTS}/{{model}}/similarity.ipynb",
        table=report(
            f"{RESULTS}/{{model}}/similarity.csv",
            caption="../report/similarity_table.rst",
            category="{model}",
            subcategory="Similarity",
            labels={"model": "{model}", "figure": "matches (table)"},
        ),
        retrieval=report(
            f"{RESULTS}/{{model}}/retrieval.csv",
            caption="../report/retrieval_table.rst",
            category="{model}",
            subcategory="Similarity",
            labels={"model": "{model}", "figure": "retrieval (table)"},
        ),
        retrieval_figure=report(
            f"{RESULTS}/{{model}}/retrieval.png",
            caption="../report/retrieval_figure.rst",
            category="{model}",
            subcategory="Similarity",
            labels={"model": "{model}", "figure": "retrieval"},
        ),
    log:
        f"{LOGS}/similarity_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/similarity_notebook/{{model}}.tsv"
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,  # make fullsize: peak under 900 MiB at the published size
    params:
        run=script_cmd("run_notebook.py"),
        parameters=lambda wc, input, output: json.dumps(
            {
                "model": wc.model,
                "dataset": input.dataset,
                "image_embeddings": input.image,
                "spectrum_embeddings": input.spectrum,
                "valid_indices": input.valid,
                "settings": config["similarity"],
                "bootstrap": config["downstream"]["bootstrap"],
                "table": output.table,
                "retrieval_csv": output.retrieval,
                "retrieval_png": output.retrieval_figure,
                "figure_dir": f"{RESULTS}/{wc.model}",
            }
        ),
        failed=f"{LOGS}/similarity_notebook/{{model}}.failed.ipynb",
    shell:
        NOTEBOOK_SHELL
