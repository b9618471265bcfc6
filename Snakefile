# Soft-prompt reachability of residual-stream targets: the research agenda as a DAG, by stage.
#   data (pool, residual caches) -> targets -> optimisation packs (GPU; Exp 1 first, deciding
#   the step budget) -> aggregation (metrics.json, conditions, findings) -> tables and
#   analyses beyond the agenda (the boundary among them) -> figures; the study again per
#   compared model
# Run: snakemake --cores 4 --resources gpu=2   (demo: --cores 2 --configfile demo.yaml)


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/targets.smk"
include: "rules/optimise.smk"
include: "rules/aggregate.smk"
include: "rules/tables.smk"
include: "rules/solutions.smk"
include: "rules/perturbation.smk"
include: "rules/boundary.smk"
include: "rules/plots.smk"
include: "rules/compare.smk"


onstart:
    # a real run (not a dry run): what the hub must still provide, say now if it cannot
    check_hub_for_every_model()


rule all:
    default_target: True
    input:
        final_outputs(),
