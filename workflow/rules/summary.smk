# Across models: the R^2 and retrieval tables, R^2 against embedding dimension, and the report's landing page.
import json


rule settings:
    output:
        f"{RESULTS}/summary/config.json",
    log:
        f"{LOGS}/settings.log",
    benchmark:
        f"{BENCH}/settings.tsv"
    localrule: True
    params:
        config=json.dumps(config),  # a changed setting rewrites the file, and the overview after it
    run:
        from astroclip_eval.io.atomic import write_json

        write_json(output[0], config)  # the config as validated, the schema's defaults filled in


rule summary:
    input:
        tables=expand(rules.redshift_notebook.output.table, model=MODELS),
        retrieval=expand(rules.similarity_notebook.output.retrieval, model=MODELS),
        embeddings=expand(rules.merge_embeddings.output.provenance, model=MODELS, split=""),
        checkpoints=expand(rules.promote_checkpoint.output.meta, model=MODELS),
        valid=expand(rules.valid_indices.output.summary, split=""),
        metrics=expand(rules.redshift_notebook.output.metrics, model=MODELS),
        properties=expand(rules.properties_notebook.output.property_table, model=MODELS) if LABELLED else [],
        classification=expand(rules.properties_notebook.output.class_table, model=MODELS) if LABELLED else [],
        joins=expand(rules.join_catalogues.output.summary, split="") if LABELLED else [],
        settings=rules.settings.output[0],
        schema=f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
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
        labelled=lambda wc, input, output: (
            f"--properties {quoted(input.properties)} --classification {quoted(input.classification)} "
            f"--joins {quoted(input.joins)} --properties-out {quoted([output.properties])} "
            f"--classification-out {quoted([output.classification])} "
            f"--properties-figure-out {quoted([output.properties_figure])}"
            if LABELLED
            else ""
        ),
    shell:
        "{params.cmd} --models {params.models} --tables {input.tables:q} --retrieval {input.retrieval:q} "
        "--embeddings {input.embeddings:q} "
        "--checkpoints {input.checkpoints:q} --valid-summary {input.valid:q} --config {input.settings:q} "
        "--schema {input.schema:q} "
        "--table-out {output.table:q} --retrieval-out {output.retrieval:q} --figure-out {output.figure:q} "
        "--overview-out {output.overview:q} --metrics {input.metrics:q} --metrics-out {output.metrics:q} "
        "{params.labelled} --log {log:q}"
