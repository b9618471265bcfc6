rule aggregate:
    input:
        runs=lambda w: final_run_files(w.experiment),
        budget=BUDGET_INPUT,
    output:
        metrics="results/{experiment}/metrics.json",
        runs="results/{experiment}/runs.h5",
    log:
        "results/logs/aggregate/{experiment}.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("aggregate.py"),
        conditions=lambda w: study.conditions(config, w.experiment),
        n_targets=lambda w: study.n_targets(config, w.experiment),
        restarts=lambda w: config["experiments"][w.experiment]["restarts"],
        metrics=canonical(config["metrics"]),
        # the decision's content (not its file's time stamp): which budget, and why
        budget=lambda w: budget_record(),
    script:
        "../workflow_scripts/aggregate.py"
