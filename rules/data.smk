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


# The residual caches. Every site's cache that is missing when Snakemake starts comes from one
# job, cache_residuals (one model load, one forward for all sites); a cache that exists but is
# out of date (a new pool) is remade alone, by cache_site. So adding a site adds one job for it
# and redoes no other.
CACHE_SITES = list(dict.fromkeys([SITE, *(s.tag for s in study.sweep_sites(config))]))
MISSING_CACHES = [
    s
    for s in CACHE_SITES
    if not Path(workflow.modifier.modify_path(CACHE.format(site=s))).exists()
]


rule cache_site:
    input:
        pool=POOL,
        model=model_files(),
    output:
        cache=CACHE,
    log:
        "results/logs/cache_residuals_{site}.log",
    benchmark:
        "results/benchmarks/cache_residuals/{site}.tsv"
    wildcard_constraints:
        site=rf"(?!(?:{'|'.join(MISSING_CACHES)})$)(hs|block)\d+",  # not one cache_residuals makes
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=code("cache_residuals.py"),
    script:
        "../workflow_scripts/cache_residuals.py"


# All missing sites at once: cache_site's own code (so a cache it made is never "code changed")
if MISSING_CACHES:

    use rule cache_site as cache_residuals with:
        output:
            caches=[CACHE.format(site=s) for s in MISSING_CACHES],
        log:
            f"results/logs/cache_residuals_{'_'.join(MISSING_CACHES)}.log",
        benchmark:
            f"results/benchmarks/cache_residuals/{'_'.join(MISSING_CACHES)}.tsv"
