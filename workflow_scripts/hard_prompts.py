"""Rule hard_prompts: each target's best hard prompt (PEZ runs) beside Exp 1's soft prompt
and its nearest-token projection, over the same number of restarts; decoded text and recovery
of the target's own tokens."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from reachability.hard_prompt import compare, markdown_table
from reachability.models import load_tokenizer
from reachability.storage import read_h5, write_json, writing
from reachability.records import expected, load
from reachability.runs import split

cfg, steps = snakemake.config, snakemake.params.steps  # both runs.h5 are at the step budget


def runs(path, keys, optional=()):
    return read_h5(path, keys, expect=expected(cfg, path, steps), optional=optional)  # [condition, target, restart, ...]


hard, attrs = runs(snakemake.input.hard_runs, ["final_mse", "cosine", "target_mean_square"],
                   ("tokens", "text_mse", "text_cosine"))
soft = runs(snakemake.input.soft_runs, ["final_mse", "cosine"])[0]
original = runs(snakemake.input.pool, ["tokens"])[0]["tokens"]  # Exp 1's target t is pool sequence t
projected = None
if snakemake.input.projected:  # Exp 1's prompts projected on their nearest tokens (analysis.enabled)
    projected = load(cfg, snakemake.input.projected[0], steps)["conditions"]["real"]["manifold"]["projected_runs"]
tokenizer = load_tokenizer(cfg["model"]["name"], cfg["model"]["revision"])
texts = [c for c in range(len(attrs["conditions"])) if "tokens" in hard and (hard["tokens"][c] >= 0).all()]  # with a text
hard = {k: v[texts] for k, v in hard.items()}  # (a norm ball beside them is the ladder's, not a hard prompt)
methods = [split(attrs["conditions"][c])[1] for c in texts]  # the text experiment's conditions are its methods
rows, summary = compare(hard, methods, soft, projected, original, tokenizer.decode)
write_json(snakemake.output.json, {"summary": summary, "targets": rows}, expected(cfg, snakemake.output.json, steps))
with writing(snakemake.output.table) as f:
    f.write(markdown_table(rows, summary))
for method, s in summary["methods"].items():
    log.info("%s: median MSE %s (soft %s, projected %s); exact recovery %.0f%%", method, s["median_mse"],
             summary["soft_median_mse"], summary["projected_median_mse"], 100 * s["exact_match_rate"])
