# AstroCLIP evaluation: checkpoint promotion -> embeddings -> valid indices -> redshift and similarity
# notebooks -> summary across models -> HTML report (`snakemake --report`).
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")

PYTHON = sys.executable  # the interpreter running Snakemake, so jobs use the same environment
SCRIPTS = f"{workflow.basedir}/workflow/scripts"
NOTEBOOK_DIR = f"{workflow.basedir}/workflow/notebooks"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/promote.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/valid.smk"
include: "workflow/rules/redshift.smk"
include: "workflow/rules/similarity.smk"
include: "workflow/rules/summary.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        all_outputs(),
    default_target: True
