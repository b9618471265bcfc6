"""Rule analysis_summary: the embedding-manifold and functional-reachability tables over every
experiment condition."""

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
