rule optimise_pack:
    input:
        targets=TARGETS,
        model=model_files(),
        # the texts that follow a prompt (prefix steering)
        pool=lambda w: [POOL] if registry.get(w.experiment).prompt else [],
    output:
        runs=RUNS,
    log:
        "results/logs/optimise/{experiment}/{site}/{pack}_s{steps}.log",
    benchmark:
        "results/benchmarks/optimise_pack/{experiment}/{site}/{pack}_s{steps}.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=experiment_code("optimise_pack.py", methods=True, runs_only=True),
        layout=layout_of,
        # Only what changes the numbers (steps are in the path): batch size, capture and job
        # size are left out on purpose.
        optimizer={
            "lr": config["optimizer"]["lr"],
            "loss": loss_setting(config),
            "precision": config["engine"]["precision"],
        },
        keep_state=lambda w: decides_budget(w.experiment, w.site),  # Adam's state, to continue
        methods=lambda w: canonical(study.methods(config, w.experiment)),  # how each condition's runs move
    script:
        "../workflow_scripts/optimise_pack.py"


checkpoint step_budget:
    input:
        runs=run_files(BASELINE),
    output:
        budget=BUDGET,
    log:
        "results/logs/step_budget.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("decide_step_budget.py", [BASELINE], runs_only=True),
        optimizer=canonical(config["optimizer"]),
        # the decision's own settings only: another metrics option must not redo it
        plateau={k: config["metrics"][k] for k in PLATEAU_SETTINGS},
        layout=lambda w: layout_of(SimpleNamespace(experiment=BASELINE, site=SITE)),
        n_targets=study.n_targets(config, BASELINE),
    script:
        "../workflow_scripts/decide_step_budget.py"


rule extend_pack:
    input:
        runs=lambda w: RUNS.format(
            experiment=w.experiment,
            site=w.site,
            pack=w.pack,
            steps=config["optimizer"]["steps"],
        ),
        targets=TARGETS,
        model=model_files(),
    output:
        runs=EXTENDED,
    log:
        "results/logs/extend/{experiment}/{site}/{pack}_s{steps}.log",
    benchmark:
        "results/benchmarks/extend_pack/{experiment}/{site}/{pack}_s{steps}.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=experiment_code("extend_pack.py", methods=["soft"], runs_only=True),
    script:
        "../workflow_scripts/extend_pack.py"
