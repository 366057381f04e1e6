# The GPU step: embed every validation row's image and spectrum.


rule embed:
    input:
        ckpt=f"{CACHE}/{{model}}/astroclip_model.ckpt",
        dataset=DATASET,
    output:
        image=f"{CACHE}/{{model}}/image_embeddings.pt",
        spectrum=f"{CACHE}/{{model}}/spectrum_embeddings.pt",
    params:
        cmd=script_cmd("embed.py"),
        batch_size=config["embedding"]["batch_size"],
        device=config["embedding"]["device"],
        expected_dim=expected_dim_args,
    conda:
        ENV
    log:
        f"{LOGS}/embed/{{model}}.log",
    benchmark:
        f"{BENCH}/embed/{{model}}.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=lambda wc, attempt: 8000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    shell:
        "{params.cmd} --checkpoint {input.ckpt} --dataset {input.dataset} "
        "--batch-size {params.batch_size} --device {params.device} "
        "--image-out {output.image} --spectrum-out {output.spectrum} --threads {threads} {params.expected_dim} --log {log}"
