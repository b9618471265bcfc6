rule optimise_shard:
    input:
        targets=TARGETS,
        model=model_files(),
    output:
        runs=RUNS,
    log:
        "results/logs/optimise/{experiment}/{site}/{condition}/r{restart}_{block}.log",
    benchmark:
        "results/benchmarks/optimise/{experiment}/{site}/{condition}/r{restart}_{block}.tsv"
    conda:
        "../envs/reachability.yaml"
    resources:
        gpu=1,
    params:
        # Only what changes the numbers: batch size and job size are left out on purpose.
        optimizer={
            "steps": config["optimizer"]["steps"],
            "lr": config["optimizer"]["lr"],
            "precision": config["engine"]["precision"],
        },
    script:
        "../workflow_scripts/optimise_shard.py"
