# Every figure, each drawn from a table or metrics another rule wrote: a plot option redraws and
# computes nothing.
rule plot_experiment:
    input:
        runs=rules.aggregate.output.runs,
        metrics=rules.aggregate.output.metrics,
        budget=BUDGET_INPUT,
    output:
        loss_curves=report(
            "results/{experiment}/loss_curves.png",
            caption="../report/loss_curves.rst",
            category=label,
        ),
        histogram=report(
            "results/{experiment}/final_mse_histogram.png",
            caption="../report/final_mse_histogram.rst",
            category=label,
        ),
        cosine=report(
            "results/{experiment}/cosine_by_position.png",
            caption="../report/cosine_by_position.rst",
            category=label,
        ),
    log:
        "results/logs/plots/{experiment}.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("plot_experiment.py"),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_experiment.py"


rule plot_summary:
    input:
        metrics=metrics_of(*EXPERIMENTS),
        budget=BUDGET_INPUT,
    output:
        summary=report(
            "results/summary.png",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "results/logs/plots/summary.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_summary.py", EXPERIMENTS),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_summary.py"


rule plot_ladder:
    input:
        table=rules.ladder.output.json,
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/ladder.png", caption="../report/ladder.rst", category="Summary"
        ),
    log:
        "results/logs/plots/ladder.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_ladder.py"),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_ladder.py"


rule plot_steering:
    input:
        metrics=METRICS,
        # notebook 004's KL at the same ε, beside what a prompt reaches (when the curves are made)
        kl=(
            rules.perturb_residuals.output.curves
            if config["perturbation"]["enabled"]
            else []
        ),
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/{experiment}/steering.png",
            caption="../report/steering.rst",
            category=label,
        ),
    log:
        "results/logs/plots/steering_{experiment}.log",
    wildcard_constraints:
        experiment=having("plot_steering"),
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("plot_steering.py"),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_steering.py"


rule plot_reachability_curves:
    input:
        metrics=METRICS,
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/{experiment}/reachability_curves.png",
            caption="../report/reachability_curves.rst",
            category=label,
        ),
    log:
        "results/logs/plots/reachability_curves_{experiment}.log",
    wildcard_constraints:
        experiment=having("plot_reachability_curves"),
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("plot_reachability_curves.py"),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_reachability_curves.py"


rule plot_transition:
    input:
        metrics=METRICS,
        # the other corruption basis, when it runs too (Exp 4 beside Exp 4p)
        others=lambda w: [
            METRICS.format(experiment=e)
            for e in EXPERIMENTS
            if "plot_transition" in registry.get(e).outputs and e != w.experiment
        ],
        findings=rules.findings.output.json,
        budget=BUDGET_INPUT,
    output:
        transition=report(
            "results/{experiment}_transition.png",
            caption="../report/experiment4_transition.rst",
            category=label,
        ),
    log:
        "results/logs/plots/transition_{experiment}.log",
    wildcard_constraints:
        experiment=having("plot_transition"),
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("plot_transition.py"),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_transition.py"


rule plot_ablation:
    input:
        full_runs=EXPERIMENT_RUNS.format(experiment=BASELINE),
        ablated_runs=EXPERIMENT_RUNS,
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/{experiment}.png",
            caption="../report/ablation.rst",
            category=label,
        ),
    log:
        "results/logs/plots/ablation_{experiment}.log",
    wildcard_constraints:
        experiment=having("plot_ablation"),
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("plot_ablation.py"),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_ablation.py"


rule plot_hard_prompts:
    input:
        table=rules.hard_prompts.output.json,
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/{experiment}/hard_vs_soft.png",
            caption="../report/hard_prompts.rst",
            category=label,
        ),
    log:
        "results/logs/plots/hard_prompts_{experiment}.log",
    wildcard_constraints:
        experiment=having("plot_hard_prompts"),
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=experiment_code("plot_hard_prompts.py"),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_hard_prompts.py"


rule plot_layer_sweep:
    input:
        metrics=rules.layer_sweep.output.metrics,
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/layer_sweep.png",
            caption="../report/layer_sweep.rst",
            category="Beyond the agenda",
        ),
    log:
        "results/logs/plots/layer_sweep.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_layer_sweep.py", config["layer_sweep"]["experiments"]),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_layer_sweep.py"


rule plot_analysis:
    input:
        solutions=expand(SOLUTIONS, experiment=ANALYSED),
        budget=BUDGET_INPUT,
    output:
        manifold=report(
            "results/embedding_manifold.png",
            caption="../report/embedding_manifold.rst",
            category="Beyond the agenda",
        ),
        functional=report(
            "results/functional_reachability.png",
            caption="../report/functional_reachability.rst",
            category="Beyond the agenda",
        ),
        trajectories=report(
            "results/layer_trajectories.png",
            caption="../report/layer_trajectories.rst",
            category="Beyond the agenda",
        ),
    log:
        "results/logs/plots/analysis.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_analysis.py", ANALYSED),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_analysis.py"


rule plot_perturbation:
    input:
        curves=rules.perturb_residuals.output.curves,
    output:
        figure=report(
            "results/perturbation/kl_vs_epsilon.png",
            caption="../report/kl_vs_epsilon.rst",
            category="Beyond the agenda",
        ),
    log:
        "results/logs/plots/perturbation.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_perturbation.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_perturbation.py"


rule plot_placement:
    input:
        points=rules.place_errors.output.points,
        budget=BUDGET_INPUT,
    output:
        figure=report(
            "results/perturbation/placement.png",
            caption="../report/placement.rst",
            category="Beyond the agenda",
        ),
    log:
        "results/logs/plots/placement.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_placement.py", ANALYSED),
        plots=canonical(config["plots"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/plot_placement.py"
