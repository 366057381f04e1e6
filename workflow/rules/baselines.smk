# Baselines: feature sets from a catalogue (the config's baselines) scored as an embedding of one modality, by the
# protocols fitted on the train split, for the redshift and every property and classification; rows of
# their own in the summary's tables and on its scoreboard.
import json


rule baseline:
    input:
        dataset=DATASET,
        valid=f"{CACHE}/valid_indices.pt",
        train_valid=f"{CACHE}/train_valid_indices.pt",
        labels=f"{CACHE}/catalogues/labels.csv",
        train_labels=f"{CACHE}/catalogues/train_labels.csv",
    output:
        **{key: f"{RESULTS}/baselines/{{baseline}}/{key}.csv" for key in BASELINE_OUTPUTS},
        **{key: f"{RESULTS}/baselines/{{baseline}}/{key}.parquet" for key in dict.fromkeys(BASELINE_OUTPUTS.values())},
    log:
        f"{LOGS}/baseline/{{baseline}}.log",
    benchmark:
        f"{BENCH}/baseline/{{baseline}}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    params:
        cmd=script_cmd("baseline.py"),
        plan=lambda wc, input, output: json.dumps(
            {
                "baseline": wc.baseline,
                "entry": config["baselines"][wc.baseline],
                "protocols": config["protocols"],
                "properties": list(config["properties"]),
                "questions": list(config["classifications"]),
                "vote_fractions": [q for q, e in config["classifications"].items() if e["vote_fractions"]],
                "bootstrap": config["downstream"]["bootstrap"],
                **{k: input[k] for k in ("dataset", "valid", "train_valid", "labels", "train_labels")},
                "outputs": dict(output.items()),
            }
        ),
    shell:
        "OMP_NUM_THREADS={threads} {params.cmd} --plan {params.plan:q} --log {log:q}"
