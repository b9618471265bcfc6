# How far the optimised prompts are from the token embeddings, what their nearest tokens reach,
# and the next-token KL of the achieved residuals (one GPU job per analysed experiment).
rule analyse_solutions:
    input:
        runs=lambda w: final_run_files(w.experiment),
        targets=lambda w: target_files(w.experiment),
        pool=POOL,
        model=model_files(),
        budget=BUDGET_INPUT,
    output:
        solutions=SOLUTIONS,
    log:
        "results/logs/solutions/{experiment}.log",
    benchmark:
        "results/benchmarks/analyse_solutions/{experiment}.tsv"
    conda:
        "../envs/reachability.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=experiment_code("analyse_solutions.py", runs_only=True),
        analysis=canonical(config["analysis"]),
        steps=budget_steps,
    script:
        "../workflow_scripts/analyse_solutions.py"


rule analysis_summary:
    input:
        solutions=expand(SOLUTIONS, experiment=ANALYSED),
        budget=BUDGET_INPUT,
    output:
        manifold_table="results/embedding_manifold.md",
        functional_table="results/functional_reachability.md",
        trajectories_table="results/layer_trajectories.md",
    log:
        "results/logs/solutions/summary.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("analysis_summary.py", ANALYSED),
        steps=budget_steps,
    script:
        "../workflow_scripts/analysis_summary.py"
