# Posteriors of the redshift and of each property given each modality's embedding, only when the config has a
# posteriors section: an ensemble of conditional neural spline flows per label and modality, scored for calibration.

POSTERIOR_LABELS = named_labels("posteriors")
JOINT_LABELS = named_labels("posteriors.joint", config["posteriors"].get("joint", {}).get("labels", []))


rule posteriors_notebook:
    input:
        **label_files([*POSTERIOR_LABELS, *JOINT_LABELS]),
        **EMBEDDED,
        **TRAIN_EMBEDDED,
        notebook=f"{NOTEBOOK_DIR}/posteriors.ipynb",
        dataset=DATASET,
    output:
        notebook=f"{RESULTS}/{{model}}/posteriors.ipynb",
        table=report(
            f"{RESULTS}/{{model}}/posteriors.csv",
            caption="../report/posteriors_table.rst",
            category="{model}",
            subcategory="Posteriors",
            labels={"model": "{model}", "table": "calibration"},
        ),
        pit_figure=report(
            f"{RESULTS}/{{model}}/posteriors_pit.png",
            caption="../report/posteriors_pit.rst",
            category="{model}",
            subcategory="Posteriors",
            labels={"model": "{model}", "figure": "PIT histograms"},
        ),
        coverage_figure=report(
            f"{RESULTS}/{{model}}/posteriors_coverage.png",
            caption="../report/posteriors_coverage.rst",
            category="{model}",
            subcategory="Posteriors",
            labels={"model": "{model}", "figure": "coverage"},
        ),
        examples_figure=report(
            f"{RESULTS}/{{model}}/posteriors_examples.png",
            caption="../report/posteriors_examples.rst",
            category="{model}",
            subcategory="Posteriors",
            labels={"model": "{model}", "figure": "example posteriors"},
        ),
        joint_table=report(
            f"{RESULTS}/{{model}}/posteriors_joint.csv",
            caption="../report/posteriors_joint.rst",
            category="{model}",
            subcategory="Posteriors",
            labels={"model": "{model}", "table": "joint posterior"},
        ),
        marginals_table=report(
            f"{RESULTS}/{{model}}/posteriors_marginals.csv",
            caption="../report/posteriors_marginals.rst",
            category="{model}",
            subcategory="Posteriors",
            labels={"model": "{model}", "table": "joint posterior's marginals"},
        ),
    log:
        f"{LOGS}/posteriors_notebook/{{model}}.log",
    benchmark:
        f"{BENCH}/posteriors_notebook/{{model}}.tsv"
    threads: 2
    resources:
        # make bench, published size (39,599 x 158,396, 128-d, redshift + 5 properties, 2 modalities, 5 flows each):
        # 751 s and 1,266 MiB on 2 cores (2026-12-06); the joint preset (posteriors.joint: 10 flows x 25 epochs x 2
        # modalities) adds 92 min and peaks at 2,187 MiB on 2 cores (2026-12-07, extrapolated from one flow's epochs)
        mem_mb=lambda wc, attempt: 2500 * attempt,
        runtime=lambda wc, attempt: (30 + (120 if JOINT_LABELS else 0)) * attempt,
        gpu=DOWNSTREAM_GPUS,
    params:
        run=script_cmd("run_notebook.py"),
        parameters=notebook_plan(
            optional=("labels", "train_labels"),
            properties=[p for p in config["properties"] if p in POSTERIOR_LABELS],
            redshift="redshift" in POSTERIOR_LABELS,
            joint_labels=JOINT_LABELS,
            settings=config["posteriors"],
            device=config["downstream"]["device"],
        ),
        failed=f"{LOGS}/posteriors_notebook/{{model}}.failed.ipynb",
    shell:
        f"OMP_NUM_THREADS={{threads}} {NOTEBOOK_SHELL}"
