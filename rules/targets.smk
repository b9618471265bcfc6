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
        code=code("build_targets.py"),
        layout=layout_of,
    script:
        "../workflow_scripts/build_targets.py"
