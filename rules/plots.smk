rule plot_experiment:
    input:
        runs=rules.aggregate.output.runs,
        metrics=rules.aggregate.output.metrics,
    output:
        loss_curves=report(
            "results/{experiment}/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="{experiment}",
        ),
        histogram=report(
            "results/{experiment}/final_mse_histogram.png",
            caption="../report/final_mse_histogram.rst",
            category="{experiment}",
        ),
        cosine=report(
            "results/{experiment}/cosine_by_position.png",
            caption="../report/cosine_by_position.rst",
            category="{experiment}",
        ),
    log:
        "results/logs/plots/{experiment}.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_experiment.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_experiment.py"


rule plot_summary:
    input:
        metrics=expand("results/{experiment}/metrics.json", experiment=EXPERIMENTS),
    output:
        summary=report(
            "results/summary.png", caption="../report/summary.rst", category="Summary"
        ),
        table="results/comparison.md",
    log:
        "results/logs/plots/summary.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_summary.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_summary.py"


rule plot_transition:
    input:
        metrics="results/experiment4/metrics.json",
    output:
        transition=report(
            "results/experiment4_transition.png",
            caption="../report/experiment4_transition.rst",
            category="Summary",
        ),
    log:
        "results/logs/plots/transition.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_transition.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_transition.py"
