rule build_targets:
    input:
        cache=CACHE,
    output:
        targets=f"results/targets/{SITE}/{{experiment}}/{{condition}}/{{block}}.h5",
    log:
        f"results/logs/build_targets/{SITE}/{{experiment}}/{{condition}}/{{block}}.log",
    conda:
        "../envs/reachability.yaml"
    script:
        "../workflow_scripts/build_targets.py"
