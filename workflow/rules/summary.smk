# Across models: the R^2 and retrieval tables, R^2 against embedding dimension, and the report's landing page.
import json


rule summary:
    input:
        tables=expand(f"{RESULTS}/{{model}}/redshift_r2.csv", model=MODELS),
        retrieval=expand(f"{RESULTS}/{{model}}/retrieval.csv", model=MODELS),
        embeddings=expand(f"{CACHE}/{{model}}/embeddings.json", model=MODELS),
        checkpoints=expand(f"{CACHE}/{{model}}/astroclip_model.json", model=MODELS),
        valid=f"{CACHE}/valid_summary.json",
        metrics=expand(f"{RESULTS}/{{model}}/redshift_metrics.csv", model=MODELS),
        properties=expand(f"{RESULTS}/{{model}}/properties_r2.csv", model=MODELS) if LABELLED else [],
        classification=expand(f"{RESULTS}/{{model}}/classification.csv", model=MODELS) if LABELLED else [],
        joins=[f"{CACHE}/catalogues/join.json"] if LABELLED else [],
    output:
        **(
            {
                "properties": report(
                    f"{RESULTS}/summary/properties_r2.csv",
                    caption="../report/summary_properties.rst",
                    category="Summary",
                    labels={"item": "6. property R^2 across models (table)"},
                ),
                "classification": report(
                    f"{RESULTS}/summary/classification.csv",
                    caption="../report/summary_classification.rst",
                    category="Summary",
                    labels={"item": "7. classification across models (table)"},
                ),
                "properties_figure": report(
                    f"{RESULTS}/summary/properties_r2_vs_embedding_dim.png",
                    caption="../report/summary_properties_figure.rst",
                    category="Summary",
                    labels={"item": "8. property R^2 vs embedding dimension"},
                ),
            }
            if LABELLED
            else {}
        ),
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
        metrics=report(
            f"{RESULTS}/summary/redshift_metrics.csv",
            caption="../report/summary_metrics.rst",
            category="Summary",
            labels={"item": "5. redshift bias, scatter, outliers (table)"},
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
        labelled=lambda wc, input, output: (
            f"--properties {quoted(input.properties)} --classification {quoted(input.classification)} "
            f"--joins {quoted(input.joins)} --properties-out {quoted([output.properties])} "
            f"--classification-out {quoted([output.classification])} "
            f"--properties-figure-out {quoted([output.properties_figure])}"
            if LABELLED
            else ""
        ),
    shell:
        "{params.cmd} --models {params.models} --tables {input.tables} --retrieval {input.retrieval} "
        "--embeddings {input.embeddings} "
        "--checkpoints {input.checkpoints} --valid-summary {input.valid} --config {params.config:q} "
        "--table-out {output.table} --retrieval-out {output.retrieval} --figure-out {output.figure} "
        "--overview-out {output.overview} --metrics {input.metrics} --metrics-out {output.metrics} "
        "{params.labelled} --log {log}"
