rule optimise_pack:
    input:
        targets=TARGETS,
        model=model_files(),
    output:
        runs=RUNS,
    log:
        "results/logs/optimise/{experiment}/{site}/{pack}.log",
    benchmark:
        "results/benchmarks/optimise_pack/{experiment}/{site}/{pack}.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=code("optimise_pack.py"),
        layout=layout_of,
        # Only what changes the numbers: batch size, capture and job size are left out on purpose.
        optimizer={
            "steps": config["optimizer"]["steps"],
            "lr": config["optimizer"]["lr"],
            "precision": config["engine"]["precision"],
        },
    script:
        "../workflow_scripts/optimise_pack.py"
