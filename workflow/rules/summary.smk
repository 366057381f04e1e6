# Across models: every running task kind's tables stacked, their figures against embedding dimension, and the
# report's landing page, all as the table of task kinds (astroclip_eval/tasks/kinds.py) declares them.
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
        unpack(summary_inputs),
    output:
        **summary_outputs(),
    log:
        f"{LOGS}/summary.log",
    benchmark:
        f"{BENCH}/summary.tsv"
    localrule: True
    params:
        cmd=script_cmd("summary.py"),
        plan=summary_plan,
    shell:
        "{params.cmd} --plan {params.plan:q} --log {log:q}"
