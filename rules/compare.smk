# The study across models (compare.models): each model runs this same workflow as a Snakemake
# module, with its own config (comparison.model_study) and its results under
# results/models/<label>/ (replace_prefix moves only results/, so inputs such as the corpus
# stay where they are). The study's own model keeps today's layout.
for entry in config["compare"]["models"]:
    module_name = comparison.module_name(entry["label"])

    module:
        name: module_name
        snakefile:
            "../Snakefile"
        config:
            comparison.model_study(config, entry)
        replace_prefix:
            {"results/": comparison.folder(entry["label"])}

    use rule * from module_name exclude all as module_name*


rule compare_models:
    input:
        metrics=lambda w: [p for paths in compared_metrics().values() for p in paths],
        budgets=[ancient(path) for path in compared_budgets().values()],
    output:
        table=report(
            "results/compare/models.md",
            caption="../report/models.rst",
            category="Across models",
        ),
        json="results/compare/models.json",
    log:
        "results/logs/compare/models.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("compare_models.py", config["compare"]["experiments"]),
        models=comparison.compared_models(config),
        metrics=compared_metrics(),
        budgets=compared_budgets(),
        axis=config["compare"]["axis"],
        findings=canonical(config["findings"]),
    script:
        "../workflow_scripts/compare_models.py"


rule plot_models:
    input:
        rows=rules.compare_models.output.json,
    output:
        figure=report(
            "results/compare/reachability_across_models.png",
            caption="../report/models.rst",
            category="Across models",
        ),
    log:
        "results/logs/plots/models.log",
    conda:
        "../envs/reachability.yaml"
    threads: 1
    params:
        code=code("plot_models.py", config["compare"]["experiments"]),
        plots=canonical(config["plots"]),
    script:
        "../workflow_scripts/plot_models.py"
