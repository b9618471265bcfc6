# The agenda's summaries: each experiment's metrics, the conditions table, the findings.
rule aggregate:
    input:
        runs=lambda w: final_run_files(w.experiment),
        budget=BUDGET_INPUT,
    output:
        metrics=METRICS,
        runs=EXPERIMENT_RUNS,
    log:
        "results/logs/aggregate/{experiment}.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("aggregate.py", runs_only=True),
        conditions=lambda w: study.conditions(config, w.experiment),
        n_targets=lambda w: study.n_targets(config, w.experiment),
        restarts=lambda w: config["experiments"][w.experiment]["restarts"],
        metrics=canonical(config["metrics"]),
        # the decision's content (not its file's time stamp): which budget, and why
        budget=lambda w: budget_record(w.experiment),
        steps=budget_steps,
    script:
        "../workflow_scripts/aggregate.py"


rule conditions_table:
    input:
        metrics=metrics_of(*EXPERIMENTS),
        budget=BUDGET_INPUT,
    output:
        table="results/conditions.md",
    log:
        "results/logs/aggregate/conditions.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("conditions_table.py", EXPERIMENTS),
        steps=budget_steps,
    script:
        "../workflow_scripts/conditions_table.py"


rule findings:
    input:
        metrics=metrics_of(*EXPERIMENTS),
        # the boundary analysis's line, when it runs
        boundary=["results/boundary.json"] if BOUNDARY else [],
        budget=BUDGET_INPUT,
    output:
        table=report(
            "results/findings.md", caption="../report/findings.rst", category="Summary"
        ),
        json="results/findings.json",
    log:
        "results/logs/aggregate/findings.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("write_findings.py", EXPERIMENTS),
        findings=canonical(config["findings"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/write_findings.py"
