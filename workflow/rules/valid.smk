# Valid rows from spectra and redshifts alone: independent of the embeddings, never reads images.


rule valid_indices:
    input:
        DATASET,
    output:
        indices=f"{CACHE}/valid_indices.pt",
        summary=f"{CACHE}/valid_summary.json",
    params:
        cmd=script_cmd("valid_indices.py"),
        z_min=config["valid"]["z_min"],
        z_max=config["valid"]["z_max"],
    conda:
        ENV
    log:
        f"{LOGS}/valid_indices.log",
    benchmark:
        f"{BENCH}/valid_indices.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{params.cmd} --dataset {input} --z-min {params.z_min} "
        "--z-max {params.z_max} --indices {output.indices} --summary {output.summary} --log {log}"
