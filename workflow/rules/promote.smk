# Promote the lowest-val/loss checkpoint of a run into the cache, with where it came from.


rule promote_checkpoint:
    input:
        promote_input,
    output:
        ckpt=f"{CACHE}/{{model}}/astroclip_model.ckpt",
        meta=f"{CACHE}/{{model}}/astroclip_model.json",
    log:
        f"{LOGS}/promote_checkpoint/{{model}}.log",
    benchmark:
        f"{BENCH}/promote_checkpoint/{{model}}.tsv"
    localrule: True
    params:
        cmd=script_cmd("promote_checkpoint.py"),
    shell:
        "{params.cmd} --source {input:q} --ckpt {output.ckpt:q} --meta {output.meta:q} --log {log:q}"
