# Tables beyond the agenda, from the experiments' runs and metrics (CPU): the ablations and
# the hard prompts against Exp 1 target by target, reachability across sites.
rule ablation_table:
    input:
        full_runs=EXPERIMENT_RUNS.format(experiment=BASELINE),
        ablated_runs=EXPERIMENT_RUNS,
        budget=BUDGET_INPUT,
    output:
        table="results/{experiment}.md",
    log:
        "results/logs/tables/{experiment}.log",
    wildcard_constraints:
        experiment=having("ablation_table"),
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("ablation_table.py"),
        steps=budget_steps,
        findings=canonical(config["findings"]),
    script:
        "../workflow_scripts/ablation_table.py"


rule hard_prompts:
    input:
        hard_runs=EXPERIMENT_RUNS,
        soft_runs=EXPERIMENT_RUNS.format(experiment=BASELINE),
        # Exp 1's prompts projected on their nearest tokens (from the analysis, when enabled)
        projected=(
            [SOLUTIONS.format(experiment=BASELINE)]
            if config["analysis"]["enabled"]
            else []
        ),
        pool=POOL,
        model=model_files(),
        budget=BUDGET_INPUT,
    output:
        table=report(
            "results/{experiment}/hard_prompts.md",
            caption="../report/hard_prompts.rst",
            category=label,
        ),
        json="results/{experiment}/hard_prompts.json",
    log:
        "results/logs/tables/{experiment}.log",
    wildcard_constraints:
        experiment=having("hard_prompts"),
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("hard_prompts.py"),
        steps=budget_steps,
    script:
        "../workflow_scripts/hard_prompts.py"


rule ladder:
    input:
        runs=expand(EXPERIMENT_RUNS, experiment=LADDER),
        pool=POOL,
        budget=BUDGET_INPUT,
    output:
        table=report(
            "results/ladder.md", caption="../report/ladder.rst", category="Summary"
        ),
        json="results/ladder.json",
    log:
        "results/logs/tables/ladder.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code(
            "ladder_table.py",
            LADDER,
            sorted({m for e in LADDER for m in study.method_names(config, e)}),
        ),
        metrics=canonical(config["metrics"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/ladder_table.py"


rule layer_sweep:
    input:
        runs=sweep_run_files,
        budget=BUDGET_INPUT,
    output:
        table="results/layer_sweep.md",
        metrics="results/layer_sweep.json",
    log:
        "results/logs/tables/layer_sweep.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("layer_sweep.py", config["layer_sweep"]["experiments"]),
        sweep=canonical(config["layer_sweep"]),
        metrics=canonical(config["metrics"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/layer_sweep.py"
