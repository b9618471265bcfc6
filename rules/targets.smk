rule build_targets:
    input:
        cache=CACHE,
    output:
        targets=TARGETS,
    log:
        "results/logs/build_targets/{site}/{experiment}/{condition}/{block}.log",
    conda:
        "../envs/reachability.yaml"
    script:
        "../workflow_scripts/build_targets.py"
