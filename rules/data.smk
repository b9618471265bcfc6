if config["model"]["build"]:

    rule build_demo_model:
        input:
            corpus=local_path(config["model"]["build"]["corpus"]),
        output:
            model=directory(config["model"]["name"]),
        log:
            "results/logs/build_demo_model.log",
        conda:
            "../envs/reachability.yaml"
        threads: 1
        params:
            code=code("build_demo_model.py"),
            spec=canonical(config["model"]["build"]),
        script:
            "../workflow_scripts/build_demo_model.py"


rule extract_pool:
    input:
        model=model_files(),
        data=probes.local_data_files(config, local_path),
    output:
        pool=POOL,
    log:
        "results/logs/extract_pool.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("extract_pool.py"),
        dataset=canonical(config["dataset"]),
        remote_data_files=remote_data_files(),
        model=canonical(config["model"]),
        shape={
            "seq_len": config["seq_len"],
            "pool_size": config["pool_size"],
            "revision": config["model"]["revision"],
        },
    script:
        "../workflow_scripts/extract_pool.py"


rule cache_residuals:
    input:
        pool=POOL,
        model=model_files(),
    output:
        cache=CACHE,
    log:
        "results/logs/cache_residuals_{site}.log",
    benchmark:
        "results/benchmarks/cache_residuals/{site}.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=code("cache_residuals.py"),
    script:
        "../workflow_scripts/cache_residuals.py"
