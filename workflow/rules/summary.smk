# Across models: the R^2 and retrieval tables, R^2 against embedding dimension, and the report's landing page.
import json


rule summary:
    input:
        tables=expand(f"{RESULTS}/{{model}}/redshift_r2.csv", model=MODELS),
        retrieval=expand(f"{RESULTS}/{{model}}/retrieval.csv", model=MODELS),
        embeddings=expand(f"{CACHE}/{{model}}/embeddings.json", model=MODELS),
        checkpoints=expand(f"{CACHE}/{{model}}/astroclip_model.json", model=MODELS),
        valid=f"{CACHE}/valid_summary.json",
    output:
        overview=report(
            f"{RESULTS}/summary/overview.html",
            caption="../report/overview.rst",
            category="Summary",
            labels={"item": "1. overview (start here)"},
        ),
        figure=report(
            f"{RESULTS}/summary/r2_vs_embedding_dim.png",
            caption="../report/summary_figure.rst",
            category="Summary",
            labels={"item": "2. R^2 vs embedding dimension"},
        ),
        table=report(
            f"{RESULTS}/summary/redshift_r2.csv",
            caption="../report/summary_table.rst",
            category="Summary",
            labels={"item": "3. R^2 across models (table)"},
        ),
        retrieval=report(
            f"{RESULTS}/summary/retrieval.csv",
            caption="../report/summary_retrieval.rst",
            category="Summary",
            labels={"item": "4. cross-modal retrieval across models (table)"},
        ),
    log:
        f"{LOGS}/summary.log",
    benchmark:
        f"{BENCH}/summary.tsv"
    localrule: True
    params:
        cmd=script_cmd("summary.py"),
        models=MODELS,
        config=json.dumps(config),
    shell:
        "{params.cmd} --models {params.models} --tables {input.tables} --retrieval {input.retrieval} "
        "--embeddings {input.embeddings} "
        "--checkpoints {input.checkpoints} --valid-summary {input.valid} --config {params.config:q} "
        "--table-out {output.table} --retrieval-out {output.retrieval} --figure-out {output.figure} "
        "--overview-out {output.overview} --log {log}"
