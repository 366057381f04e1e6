# The GPU step: embed every validation row's image and spectrum, in `embedding.shards` contiguous row ranges
# (one GPU job each), then merge them in row order. {split} is empty for the validation split and 'train_'
# for the train split, embedded only when a redshift protocol is fitted on it.
import json


rule embed:
    input:
        ckpt=f"{CACHE}/{{model}}/astroclip_model.ckpt",
        dataset=DATASET,
    output:
        f"{CACHE}/{{model}}/embedding_shards/{{split}}{{shard}}-of-{SHARDS}.pt",
    log:
        f"{LOGS}/embed/{{model}}/{{split}}{{shard}}-of-{SHARDS}.log",
    benchmark:
        f"{BENCH}/embed/{{model}}/{{split}}{{shard}}-of-{SHARDS}.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=embed_mem_mb,
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        cmd=script_cmd("embed.py"),
        shards=SHARDS,
        split=split_name,
        batch_size=config["embedding"]["batch_size"],
        precision=config["embedding"]["precision"],
        device=config["embedding"]["device"],
        expected_dim=expected_dim_args,
        loader=lambda wc: config["models"][wc.model]["loader"],
        loader_options=lambda wc: json.dumps(config["models"][wc.model]["loader_options"]),
    shell:
        "{params.cmd} --checkpoint {input.ckpt:q} --dataset {input.dataset:q} --split {params.split} "
        "--shard {wildcards.shard} --shards {params.shards} "
        "--batch-size {params.batch_size} --precision {params.precision:q} --device {params.device:q} "
        "--loader {params.loader:q} --loader-options {params.loader_options:q} "
        "--out {output:q} --threads {threads} {params.expected_dim} --log {log:q}"


rule merge_embeddings:
    input:
        shards=embedding_shards,
        dataset=DATASET,
    output:
        image=f"{CACHE}/{{model}}/{{split}}image_embeddings.pt",
        spectrum=f"{CACHE}/{{model}}/{{split}}spectrum_embeddings.pt",
        provenance=f"{CACHE}/{{model}}/{{split}}embeddings.json",
    log:
        f"{LOGS}/merge_embeddings/{{split}}{{model}}.log",
    benchmark:
        f"{BENCH}/merge_embeddings/{{split}}{{model}}.tsv"
    localrule: True
    params:
        cmd=script_cmd("merge_embeddings.py"),
        split=split_name,
    shell:
        "{params.cmd} {input.shards:q} --dataset {input.dataset:q} --split {params.split} "
        "--image-out {output.image:q} --spectrum-out {output.spectrum:q} "
        "--provenance-out {output.provenance:q} --log {log:q}"
