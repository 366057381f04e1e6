# The embedded demo's survey file, only when the config has a `simulate` section.
import json

if "simulate" in config:

    rule simulate_survey:
        output:
            survey=DATASET,
            catalogues=simulated_catalogues(),
        log:
            f"{LOGS}/simulate_survey.log",
        benchmark:
            f"{BENCH}/simulate_survey.tsv"
        threads: config["simulate"]["processes"]
        resources:
            mem_mb=8000,
        params:
            cmd=script_cmd("simulate_survey.py"),
            survey=json.dumps(config["simulate"]),
        shell:
            "{params.cmd} --plan {params.survey:q} --output {output.survey:q} --log {log:q}"
