# The configured catalogues joined to each split's rows: the labels of the properties and classifications and the
# baselines' features (astroclip_eval/tasks/labels.py), with what each rule dropped.


rule join_catalogues:
    input:
        unpack(catalogue_files),
        dataset=DATASET,
    output:
        labels=f"{CACHE}/catalogues/{{split}}labels.csv",
        summary=f"{CACHE}/catalogues/{{split}}join.json",
    log:
        f"{LOGS}/{{split}}join_catalogues.log",
    benchmark:
        f"{BENCH}/{{split}}join_catalogues.tsv"
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
    params:
        cmd=script_cmd("join_catalogues.py"),
        split=split_name,
        config=label_definitions(),
    shell:
        "{params.cmd} --dataset {input.dataset:q} --split {params.split} --plan {params.config:q} "
        "--labels {output.labels:q} --summary {output.summary:q} --log {log:q}"
