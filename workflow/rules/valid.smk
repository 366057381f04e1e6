# Valid rows from spectra and redshifts alone: independent of the embeddings, never reads images.
# {split} is empty for the validation split (valid_indices.pt) and 'train_' for the train split.


rule valid_indices:
    input:
        DATASET,
    output:
        indices=f"{CACHE}/{{split}}valid_indices.pt",
        summary=f"{CACHE}/{{split}}valid_summary.json",
    log:
        f"{LOGS}/{{split}}valid_indices.log",
    benchmark:
        f"{BENCH}/{{split}}valid_indices.tsv"
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,  # make fullsize: peak under 900 MiB at the published size
    params:
        cmd=script_cmd("valid_indices.py"),
        z_min=config["row_filter"]["z_min"],
        z_max=config["row_filter"]["z_max"],
        split=split_name,
    shell:
        "{params.cmd} --dataset {input:q} --split {params.split} --z-min {params.z_min} "
        "--z-max {params.z_max} --indices {output.indices:q} --summary {output.summary:q} --log {log:q}"
