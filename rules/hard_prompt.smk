rule hard_prompts:
    input:
        hard_runs="results/hard_prompt/runs.h5",
        soft_runs="results/experiment1/runs.h5",
        # Exp 1's prompts projected on their nearest tokens (from the analysis, when enabled)
        projected=(
            ["results/experiment1/solutions.json"]
            if config["analysis"]["enabled"]
            else []
        ),
        pool=POOL,
        model=model_files(),
        hard_metrics="results/hard_prompt/metrics.json",  # the step budget the runs hold
    output:
        table=report(
            "results/hard_prompt/hard_prompts.md",
            caption="../report/hard_prompts.rst",
            category="Hard prompts",
        ),
        json="results/hard_prompt/hard_prompts.json",
    log:
        "results/logs/analysis/hard_prompts.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("hard_prompts.py"),
    script:
        "../workflow_scripts/hard_prompts.py"


rule plot_hard_prompts:
    input:
        table=rules.hard_prompts.output.json,
    output:
        figure=report(
            "results/hard_prompt/hard_vs_soft.png",
            caption="../report/hard_prompts.rst",
            category="Hard prompts",
        ),
    log:
        "results/logs/plots/hard_prompts.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_hard_prompts.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_hard_prompts.py"
