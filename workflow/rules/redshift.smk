# Zero-shot kNN redshift, as a parameterised notebook executed with papermill.


rule redshift_notebook:
    input:
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
    params:
        papermill=f"{PYTHON} -m papermill",
        k=config["redshift"]["n_neighbours"],
        exclude_self=config["redshift"]["exclude_self"],
        z_max=config["valid"]["z_max"],
    conda:
        ENV
    log:
        f"{LOGS}/redshift_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/redshift_notebook/{{model}}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{params.papermill} {input.notebook} {output.notebook} -k python3 --cwd . "
        "-p model {wildcards.model} -p dataset {input.dataset} -p image_embeddings {input.image} "
        "-p spectrum_embeddings {input.spectrum} -p valid_indices {input.valid} -p n_neighbours {params.k} "
        "-p exclude_self {params.exclude_self} -p z_max {params.z_max} "
        "-p figure {output.figure} -p table {output.table} > {log} 2>&1"


rule notebook_html:
    input:
        f"{RESULTS}/{{model}}/{{notebook}}.ipynb",
    output:
        report(
            f"{RESULTS}/{{model}}/{{notebook}}.html",
            caption="../report/notebook.rst",
            category="{model}",
            subcategory="Notebooks",
            labels={"model": "{model}", "notebook": "{notebook}"},
        ),
    params:
        cmd=script_cmd("notebook_html.py"),
    conda:
        ENV
    log:
        f"{LOGS}/notebook_html/{{model}}_{{notebook}}.log",
    benchmark:
        f"{BENCH}/notebook_html/{{model}}_{{notebook}}.tsv"
    localrule: True
    shell:
        "{params.cmd} {input} {output} --log {log}"
