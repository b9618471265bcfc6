"""Rule ablation_table: full model vs no-FFN vs no-attention on Exp 1's targets, each side's
best over the same restarts (which share their initial prompts)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability.guide import difficulty_correlations, paired_table
from reachability.results import experiment_runs
from reachability.storage import writing

i = snakemake.input
(full, _), (variants, attrs) = (experiment_runs(snakemake.config, path, snakemake.params.steps, ["final_mse", "cosine"])
                                for path in (i.full_runs, i.ablated_runs))
rows = paired_table(full, variants, attrs["conditions"])
correlations = difficulty_correlations(rows, snakemake.params.findings)


def interval(c: dict) -> str:
    return f"{c['r']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}], p = {c['p']:.2g}"


with writing(snakemake.output.table) as f:
    f.write(f"{rows[0]['targets']} of Exp 1's targets; each target's best over the same restarts on both sides (the "
            f"first {rows[0]['restarts']}, which share their initial prompts).\n\n")
    f.write("| variant | median cosine | Δ from full | median best MSE | better than full (lower MSE) |\n")
    f.write("|---|---|---|---|---|\n")
    f.write(f"| full model | {rows[0]['full_median_cosine']:.5f} | — | {rows[0]['full_median_best_mse']:.4g} | — |\n")
    for r in rows:
        f.write(f"| {r['variant'].replace('_', ' ')} | {r['median_cosine']:.5f} "
                f"| {r['median_cosine'] - r['full_median_cosine']:+.5f} | {r['median_best_mse']:.4g} "
                f"| {r['better_share']:.0%} |\n")
    f.write(f"\nHow alike the sides find the same targets: correlation of per-target log10 best MSE (the research "
            f"log's difficulty correlations), Pearson's r with its Fisher-z interval and Spearman's ρ with a paired "
            f"bootstrap interval ({snakemake.params.findings['confidence']:.0%}).\n\n")
    f.write("| sides | targets | Pearson r | Spearman ρ |\n|---|---|---|---|\n")
    for c in correlations:
        if "unmeasured" in c:
            f.write(f"| {' vs '.join(c['sides'])} | – | {c['unmeasured']} | – |\n")
        else:
            left = f" ({c['left_out']} left out)" if c["left_out"] else ""
            f.write(f"| {' vs '.join(c['sides'])} | {c['targets']}{left} | {interval(c['pearson'])} "
                    f"| {interval(c['spearman'])} |\n")
