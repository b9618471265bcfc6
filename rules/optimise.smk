rule optimise_shard:
    input:
        targets=rules.build_targets.output.targets,
        model=model_files(),
    output:
        runs="results/{experiment}/runs/{condition}/r{restart}_{block}.h5",
    log:
        "results/logs/optimise/{experiment}/{condition}/r{restart}_{block}.log",
    benchmark:
        "results/benchmarks/optimise/{experiment}/{condition}/r{restart}_{block}.tsv"
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
