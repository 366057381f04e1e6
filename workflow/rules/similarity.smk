# Similarity search (four modes) and cross-modal retrieval, as a parameterised notebook executed with papermill.


rule similarity_notebook:
    input:
        **EMBEDDED,
        notebook=f"{NOTEBOOK_DIR}/similarity.ipynb",
        dataset=DATASET,
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
        retrieval_csv=report(
            f"{RESULTS}/{{model}}/retrieval.csv",
            caption="../report/retrieval_table.rst",
            category="{model}",
            subcategory="Similarity",
            labels={"model": "{model}", "figure": "retrieval (table)"},
        ),
        retrieval_png=report(
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
        parameters=lambda wc, input, output: notebook_plan(
            settings=config["similarity"],
            bootstrap=config["downstream"]["bootstrap"],
            figure_dir=f"{RESULTS}/{wc.model}",
        )(wc, input, output),
        failed=f"{LOGS}/similarity_notebook/{{model}}.failed.ipynb",
    shell:
        NOTEBOOK_SHELL
