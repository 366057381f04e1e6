# R^2 across models against embedding dimension.


rule summary:
    input:
        tables=expand(f"{RESULTS}/{{model}}/redshift_r2.csv", model=MODELS),
        embeddings=expand(f"{CACHE}/{{model}}/image_embeddings.pt", model=MODELS),
    output:
        table=report(
            f"{RESULTS}/summary/redshift_r2.csv",
            caption="../report/summary_table.rst",
            category="Summary",
            labels={"table": "R^2 across models"},
        ),
        figure=report(
            f"{RESULTS}/summary/r2_vs_embedding_dim.png",
            caption="../report/summary_figure.rst",
            category="Summary",
            labels={"figure": "R^2 vs embedding dimension"},
        ),
    params:
        cmd=script_cmd("summary.py"),
        models=MODELS,
    conda:
        ENV
    log:
        f"{LOGS}/summary.log",
    benchmark:
        f"{BENCH}/summary.tsv"
    localrule: True
    shell:
        "{params.cmd} --models {params.models} --tables {input.tables} "
        "--embeddings {input.embeddings} --table-out {output.table} --figure-out {output.figure} --log {log}"
