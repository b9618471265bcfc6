# Soft-prompt reachability of residual-stream targets: the research agenda as a DAG.
#   pool extraction -> residual cache (HDF5) -> targets -> optimisation packs (GPU; Exp 1
#   first, deciding the step budget) -> aggregation (metrics.json) -> findings and plots
# Run: snakemake --cores 4 --resources gpu=2   (demo: --cores 2 --configfile demo.yaml)


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/targets.smk"
include: "rules/optimise.smk"
include: "rules/aggregate.smk"
include: "rules/plots.smk"
include: "rules/analysis.smk"
include: "rules/hard_prompt.smk"
include: "rules/compare.smk"


onstart:
    # a real run (not a dry run): what the hub must still provide, say now if it cannot
    check_hub_for_every_model()


rule all:
    default_target: True
    input:
        final_outputs(),
