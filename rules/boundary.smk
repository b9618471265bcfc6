# Where the reachable set ends (CPU): every analysed experiment's targets in one tidy table,
# each beside its distances from the residuals real text produces at its site, then
# reachability read against those distances, at the study's site and across the layer sweep.
rule targets_table:
    input:
        **boundary_inputs("study"),
        budget=BUDGET_INPUT,
    output:
        table="results/targets.csv",
        record="results/targets.csv.record.json",
    log:
        "results/logs/boundary/targets.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("targets_table.py", ANALYSED),
        tables=study.boundary_tables(config, "study"),
        metrics=canonical(config["metrics"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/targets_table.py"


use rule targets_table as sweep_targets_table with:
    input:
        **boundary_inputs("sweep"),
        budget=BUDGET_INPUT,
    output:
        table="results/layer_sweep/targets.csv",
        record="results/layer_sweep/targets.csv.record.json",
    log:
        "results/logs/boundary/sweep_targets.log",
    params:
        code=code("targets_table.py", config["layer_sweep"]["experiments"]),
        tables=study.boundary_tables(config, "sweep"),
        metrics=canonical(config["metrics"]),
        steps=budget_steps,


rule boundary:
    input:
        table="results/targets.csv",
        record="results/targets.csv.record.json",
        budget=BUDGET_INPUT,
    output:
        table=report(
            "results/boundary.md", caption="../report/boundary.rst", category="Summary"
        ),
        json="results/boundary.json",
    log:
        "results/logs/boundary/boundary.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("boundary.py", BOUNDED),
        findings=canonical(config["findings"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/boundary.py"


use rule boundary as sweep_boundary with:
    input:
        table="results/layer_sweep/targets.csv",
        record="results/layer_sweep/targets.csv.record.json",
        budget=BUDGET_INPUT,
    output:
        table=report(
            "results/layer_sweep/boundary.md",
            caption="../report/boundary.rst",
            category="Beyond the agenda",
        ),
        json="results/layer_sweep/boundary.json",
    log:
        "results/logs/boundary/sweep_boundary.log",


rule plot_boundary:
    input:
        table="results/targets.csv",
        record="results/targets.csv.record.json",
        json="results/boundary.json",
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/boundary.png",
            caption="../report/boundary.rst",
            category="Summary",
        ),
    log:
        "results/logs/plots/boundary.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_boundary.py", BOUNDED),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_boundary.py"


use rule plot_boundary as plot_sweep_boundary with:
    input:
        table="results/layer_sweep/targets.csv",
        record="results/layer_sweep/targets.csv.record.json",
        json="results/layer_sweep/boundary.json",
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/layer_sweep/boundary.png",
            caption="../report/boundary.rst",
            category="Beyond the agenda",
        ),
    log:
        "results/logs/plots/sweep_boundary.log",
