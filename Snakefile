# AstroCLIP evaluation: checkpoint promotion -> embeddings -> valid indices -> the task kinds' notebooks (redshift,
# similarity, properties, posteriors) and the explorer -> summary across models -> HTML report (`snakemake --report`).
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from astroclip_eval.io.config import check as check_config
from astroclip_eval.io.config import check_against_data as check_config_against_data
from astroclip_eval.io.config import check_files as check_config_files
from astroclip_eval.io.errors import UserError

min_version("9.0")


if not workflow.config_settings.configfiles:  # the demo, unless the user names a config (not merged into it)

    configfile: "config/config.yaml"


try:  # validated once, the schema's defaults filled in; one clear line naming the key instead of a schema dump
    check_config_files(workflow.config_settings.configfiles or ["config/config.yaml"])
    check_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
    check_config_against_data(config)
except UserError as error:
    raise WorkflowError(str(error)) from None

PYTHON = sys.executable  # the interpreter running Snakemake, so jobs use the same environment
SCRIPTS = f"{workflow.basedir}/workflow/scripts"
NOTEBOOK_DIR = f"{workflow.basedir}/workflow/notebooks"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/promote.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/valid.smk"
include: "workflow/rules/catalogues.smk"
include: "workflow/rules/baselines.smk"


for kind in KINDS:  # each running task kind's rule file, named as the kind (astroclip_eval/tasks/kinds.py)

    include: f"workflow/rules/{kind.name}.smk"


include: "workflow/rules/notebooks.smk"
include: "workflow/rules/results.smk"
include: "workflow/rules/summary.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_outputs(),
