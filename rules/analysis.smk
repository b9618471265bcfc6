# Beyond the agenda: the research log's questions, from the same cached targets and runs.
rule ablation_table:
    input:
        full="results/experiment1/metrics.json",
        ablated="results/ablation/metrics.json",
    output:
        table="results/ablation.md",
    log:
        "results/logs/analysis/ablation.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("ablation_table.py"),
    script:
        "../workflow_scripts/ablation_table.py"


rule plot_ablation:
    input:
        full="results/experiment1/metrics.json",
        ablated="results/ablation/metrics.json",
    output:
        figure=report(
            "results/ablation.png",
            caption="../report/ablation.rst",
            category="Beyond the agenda",
        ),
    log:
        "results/logs/plots/ablation.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_ablation.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_ablation.py"


rule layer_sweep:
    input:
        runs=sweep_run_files,
    output:
        table="results/layer_sweep.md",
        metrics="results/layer_sweep.json",
    log:
        "results/logs/analysis/layer_sweep.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("layer_sweep.py"),
        sweep=canonical(config["layer_sweep"]),
        metrics=canonical(config["metrics"]),
    script:
        "../workflow_scripts/layer_sweep.py"


rule plot_layer_sweep:
    input:
        metrics="results/layer_sweep.json",
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
        code=code("plot_layer_sweep.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_layer_sweep.py"


rule analyse_solutions:
    input:
        runs=lambda w: final_run_files(w.experiment),
        targets=lambda w: target_files(w.experiment),
        model=model_files(),
    output:
        solutions="results/{experiment}/solutions.json",
    log:
        "results/logs/analysis/solutions_{experiment}.log",
    benchmark:
        "results/benchmarks/analyse_solutions/{experiment}.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=code("analyse_solutions.py"),
        analysis=canonical(config["analysis"]),
    script:
        "../workflow_scripts/analyse_solutions.py"


rule analysis_summary:
    input:
        solutions=expand("results/{experiment}/solutions.json", experiment=ANALYSED),
    output:
        manifold_table="results/embedding_manifold.md",
        functional_table="results/functional_reachability.md",
    log:
        "results/logs/analysis/summary.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("analysis_summary.py"),
    script:
        "../workflow_scripts/analysis_summary.py"


rule plot_analysis:
    input:
        solutions=expand("results/{experiment}/solutions.json", experiment=ANALYSED),
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
    log:
        "results/logs/plots/analysis.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_analysis.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_analysis.py"


rule perturb_residuals:
    input:
        pool=POOL,
        model=model_files(),
    output:
        curves="results/perturbation/kl_vs_epsilon.json",
    log:
        "results/logs/analysis/perturbation.log",
    benchmark:
        "results/benchmarks/perturb_residuals.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=code("perturb_residuals.py"),
        perturbation=canonical(config["perturbation"]),
        sites=[site.tag for site in study.perturbation_sites(config)],
    script:
        "../workflow_scripts/perturb_residuals.py"


rule plot_perturbation:
    input:
        curves="results/perturbation/kl_vs_epsilon.json",
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


rule placement_curve:
    input:
        pool=POOL,
        solutions=expand("results/{experiment}/solutions.json", experiment=ANALYSED),
        model=model_files(),
    output:
        curve="results/perturbation/placement_curve.json",
    log:
        "results/logs/analysis/placement_curve.log",
    benchmark:
        "results/benchmarks/placement_curve.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=code("placement_curve.py"),
        perturbation=canonical(config["perturbation"]),
    script:
        "../workflow_scripts/placement_curve.py"


rule place_errors:
    input:
        curve="results/perturbation/placement_curve.json",
        solutions=expand("results/{experiment}/solutions.json", experiment=ANALYSED),
    output:
        table="results/perturbation/placement.md",
        points="results/perturbation/placement.json",
    log:
        "results/logs/analysis/placement.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("place_errors.py"),
    script:
        "../workflow_scripts/place_errors.py"


rule plot_placement:
    input:
        points="results/perturbation/placement.json",
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
        code=code("plot_placement.py"),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_placement.py"
