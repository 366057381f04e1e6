# Similarity search (four modes), as a parameterised notebook executed with papermill.
import json


rule similarity_notebook:
    input:
        notebook=f"{NOTEBOOK_DIR}/similarity.ipynb",
        dataset=DATASET,
        image=f"{CACHE}/{{model}}/image_embeddings.pt",
        spectrum=f"{CACHE}/{{model}}/spectrum_embeddings.pt",
        valid=f"{CACHE}/valid_indices.pt",
        summary=f"{CACHE}/valid_summary.json",
    output:
        notebook=f"{RESULTS}/{{model}}/similarity.ipynb",
        table=report(
            f"{RESULTS}/{{model}}/similarity.csv",
            caption="../report/similarity_table.rst",
            category="{model}",
            subcategory="Similarity",
            labels={"model": "{model}", "figure": "matches (table)"},
        ),
        **{
            f"{kind}_{mode}": report(
                f"{RESULTS}/{{model}}/similarity_{kind}_{mode}.png",
                caption=f"../report/similarity_{kind}.rst",
                category="{model}",
                subcategory="Similarity",
                labels={"model": "{model}", "figure": f"{kind} {mode}"},
            )
            for kind in ("images", "spectra")
            for mode in SIM_MODES
        },
    params:
        check=script_cmd("check_queries.py"),
        papermill=f"{PYTHON} -m papermill",
        queries=json.dumps(config["similarity"]["query_indices"]),
        top_k=config["similarity"]["top_k"],
        figure_dir=lambda wc: f"{RESULTS}/{wc.model}",
    conda:
        ENV
    log:
        f"{LOGS}/similarity_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/similarity_notebook/{{model}}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{params.check} --valid {input.valid} --summary {input.summary} --queries '{params.queries}' --log {log} && "
        "{params.papermill} {input.notebook} {output.notebook} -k python3 --cwd . "
        "-p model {wildcards.model} -p dataset {input.dataset} -p image_embeddings {input.image} "
        "-p spectrum_embeddings {input.spectrum} -p valid_indices {input.valid} "
        "-y 'query_indices: {params.queries}' -p top_k {params.top_k} "
        "-p table {output.table} -p figure_dir {params.figure_dir} >> {log} 2>&1"
