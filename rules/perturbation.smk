# KL of next-token distributions against a residual perturbation of ε × RMS (notebook 004),
# and the curve reachability errors are placed on (two GPU jobs), then the placement (CPU).
rule perturb_residuals:
    input:
        pool=POOL,
        model=model_files(),
    output:
        curves="results/perturbation/kl_vs_epsilon.json",
    log:
        "results/logs/perturbation/kl_vs_epsilon.log",
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


rule placement_curve:
    input:
        pool=POOL,
        solutions=expand(SOLUTIONS, experiment=ANALYSED),
        model=model_files(),
        budget=BUDGET_INPUT,
    output:
        curve="results/perturbation/placement_curve.json",
    log:
        "results/logs/perturbation/placement_curve.log",
    benchmark:
        "results/benchmarks/placement_curve.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=code("placement_curve.py", ANALYSED),
        perturbation=canonical(config["perturbation"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/placement_curve.py"


rule place_errors:
    input:
        curve=rules.placement_curve.output.curve,
        solutions=expand(SOLUTIONS, experiment=ANALYSED),
        budget=BUDGET_INPUT,
    output:
        table="results/perturbation/placement.md",
        points="results/perturbation/placement.json",
    log:
        "results/logs/perturbation/placement.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("place_errors.py", ANALYSED),
        steps=budget_steps,
    script:
        "../workflow_scripts/place_errors.py"
