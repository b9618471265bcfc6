rule build_targets:
    input:
        cache=CACHE,
    output:
        targets=TARGETS,
    log:
        "results/logs/build_targets/{site}/{experiment}/{pack}.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("build_targets.py", runs_only=True),
        layout=layout_of,
    script:
        "../workflow_scripts/build_targets.py"
