"""Rule analysis_summary: the embedding-manifold, functional-reachability and layer-trajectory
tables over every analysed condition."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability.results import read_solutions
from reachability.storage import writing

rows = read_solutions(snakemake.input.solutions, snakemake.config, snakemake.params.steps)
with writing(snakemake.output.manifold_table) as f:
    f.write("| condition | nearest-token cosine (median) | > 0.9 | prompt / token norm | soft MSE | hard-token MSE "
            "| soft cosine | hard-token cosine | nearest tokens of one prompt |\n|---|---|---|---|---|---|---|---|---|\n")
    for k, s in rows.items():
        m = s["manifold"]
        example = "".join(m["decoded_examples"][0]["tokens"]) if m["decoded_examples"] else ""
        example = example.replace("|", "\\|").replace("\n", "\\n")
        f.write(f"| {k} | {m['nearest_token_cosine_median']:.3f} | {m['fraction_above_0.9']:.0%} "
                f"| {m['prompt_norm_mean']:.3g} / {m['token_norm_mean']:.3g} | {m['soft_median_mse']:.3g} "
                f"| {m['hard_median_mse']:.3g} | {m['soft_median_cosine']:.4f} | {m['hard_median_cosine']:.4f} "
                f"| `{example}` |\n")
with writing(snakemake.output.functional_table) as f:
    f.write("| condition | median KL | median ε of the error | KL by position (median over targets) |\n|---|---|---|---|\n")
    for k, s in rows.items():
        fn = s["functional"]
        by_position = " ".join(f"{x:.2g}" for x in fn["kl_by_position_median"])
        f.write(f"| {k} | {fn['median_kl']:.3g} | {fn['median_epsilon']:.3g} | {by_position} |\n")
with writing(snakemake.output.trajectories_table) as f:
    f.write("Mean over positions of cos(hidden_states[L], target) at every layer L (0: the input), for each "
            "target's best prompt and for the text that made the target (where one did): the median over targets, "
            "and the targets of best, median and worst best MSE.\n\n| condition | of | median over targets by layer | "
            "best | median | worst |\n|---|---|---|---|---|---|\n")
    for k, s in rows.items():
        t = s["trajectories"]
        where = {name: t["target_ids"].index(i) for name, i in t["picked"].items()}
        for of in ("prompt", "text"):
            if of in t:
                curves = [" ".join(f"{x:.3f}" for x in t[of][where[name]]) for name in ("best", "median", "worst")]
                f.write(f"| {k} | {of} | {' '.join(f'{x:.3f}' for x in t[of + '_median'])} | "
                        + " | ".join(f"{t['picked'][n]}: {c}" for n, c in zip(("best", "median", "worst"), curves))
                        + " |\n")
