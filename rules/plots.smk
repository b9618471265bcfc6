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


rule compare_conditions:
    input:
        metrics=expand("results/{experiment}/metrics.json", experiment=EXPERIMENTS),
    output:
        table="results/comparison.md",
    log:
        "results/logs/analysis/comparison.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("compare_conditions.py"),
    script:
        "../workflow_scripts/compare_conditions.py"


rule findings:
    input:
        metrics=expand("results/{experiment}/metrics.json", experiment=EXPERIMENTS),
    output:
        table=report(
            "results/findings.md", caption="../report/findings.rst", category="Summary"
        ),
        json="results/findings.json",
    log:
        "results/logs/analysis/findings.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("write_findings.py"),
        findings=canonical(config["findings"]),
    script:
        "../workflow_scripts/write_findings.py"


rule plot_summary:
    input:
        metrics=expand("results/{experiment}/metrics.json", experiment=EXPERIMENTS),
    output:
        summary=report(
            "results/summary.png", caption="../report/summary.rst", category="Summary"
        ),
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
        findings="results/findings.json",
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


rule plot_reachability_curves:
    input:
        metrics="results/experiment3/metrics.json",
    output:
        figure=report(
            "results/experiment3/reachability_curves.png",
            caption="../report/reachability_curves.rst",
            category="experiment3",
        ),
    log:
        "results/logs/plots/reachability_curves.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_reachability_curves.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_reachability_curves.py"
