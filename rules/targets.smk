rule build_targets:
    input:
        cache=CACHE,
        files=lambda w: registry.get(w.experiment).inputs(
            config["experiments"][w.experiment]
        ),
        # targets made by a forward of composed texts (prefix steering): the pool and the model
        forward=lambda w: (
            [POOL, *model_files()] if registry.get(w.experiment).forward else []
        ),
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
        settings=lambda w: canonical(study.own_settings(config, w.experiment)),
    script:
        "../workflow_scripts/build_targets.py"
