"""Rule hard_prompts: each target's best hard prompt (PEZ runs) beside Exp 1's soft prompt
and its nearest-token projection, over the same number of restarts; decoded text and recovery
of the target's own tokens."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

log = start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

from reachability.hard_prompt import compare, markdown_table  # noqa: E402
from reachability.models import load_tokenizer  # noqa: E402
from reachability.storage import jsonable, read_h5  # noqa: E402

cfg = snakemake.config
hard = read_h5(snakemake.input.hard_runs, ["final_mse", "cosine", "tokens"])[0]  # [condition, target, restart, ...]
soft = read_h5(snakemake.input.soft_runs, ["final_mse", "cosine"])[0]
original = read_h5(snakemake.input.pool, ["tokens"])[0]["tokens"]  # Exp 1's target t is pool sequence t
projected = None
if snakemake.input.projected:  # Exp 1's prompts projected on their nearest tokens (analysis.enabled)
    with open(snakemake.input.projected[0]) as f:
        projected = json.load(f)["conditions"]["real"]["manifold"]["projected_runs"]
tokenizer = load_tokenizer(cfg["model"]["name"], cfg["model"]["revision"])
rows, summary = compare(hard, soft, projected, original, tokenizer.decode)
with open(snakemake.output.json, "w") as f:
    json.dump(jsonable({"summary": summary, "targets": rows}), f, indent=1)
with open(snakemake.output.table, "w") as f:
    f.write(markdown_table(rows, summary))
log.info("hard prompts: median MSE %s (soft %s, projected %s); exact recovery %.0f%%", summary["hard_median_mse"],
         summary["soft_median_mse"], summary["projected_median_mse"], 100 * summary["exact_match_rate"])
