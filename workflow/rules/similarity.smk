# Similarity search (four modes), as a parameterised notebook executed with papermill.
import json


rule similarity_notebook:
    input:
        notebook=f"{NOTEBOOK_DIR}/similarity.ipynb",
        dataset=DATASET,
        image=f"{CACHE}/{{model}}/image_embeddings.pt",
        spectrum=f"{CACHE}/{{model}}/spectrum_embeddings.pt",
        valid=f"{CACHE}/valid_indices.pt",
    output:
        notebook=f"{RESULTS}/{{model}}/similarity.ipynb",
        table=report(
            f"{RESULTS}/{{model}}/similarity.csv",
            caption="../report/similarity_table.rst",
            category="{model}",
            subcategory="Similarity",
            labels={"model": "{model}", "figure": "matches (table)"},
        ),
        images=report(
            expand(f"{RESULTS}/{{{{model}}}}/similarity_images_{{mode}}.png", mode=SIM_MODES),
            caption="../report/similarity_images.rst",
            category="{model}",
            subcategory="Similarity",
            labels=lambda wc, path: {"model": wc.model, "figure": "images " + Path(path).stem.rsplit("_", 1)[1]},
        ),
        spectra=report(
            expand(f"{RESULTS}/{{{{model}}}}/similarity_spectra_{{mode}}.png", mode=SIM_MODES),
            caption="../report/similarity_spectra.rst",
            category="{model}",
            subcategory="Similarity",
            labels=lambda wc, path: {"model": wc.model, "figure": "spectra " + Path(path).stem.rsplit("_", 1)[1]},
        ),
    params:
        queries=json.dumps(config["similarity"]["query_indices"]),
        top_k=config["similarity"]["top_k"],
        figure_dir=lambda wc: f"{RESULTS}/{wc.model}",
    log:
        f"{LOGS}/similarity_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/similarity_notebook/{{model}}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{PYTHON} -m papermill {input.notebook} {output.notebook} -k python3 --cwd . "
        "-p model {wildcards.model} -p dataset {input.dataset} -p image_embeddings {input.image} "
        "-p spectrum_embeddings {input.spectrum} -p valid_indices {input.valid} "
        "-y 'query_indices: {params.queries}' -p top_k {params.top_k} "
        "-p table {output.table} -p figure_dir {params.figure_dir} > {log} 2>&1"
