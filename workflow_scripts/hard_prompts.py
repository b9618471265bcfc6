"""Rule hard_prompts: each target's best hard prompt (PEZ runs) beside Exp 1's soft prompt
and its nearest-token projection; decoded text and recovery of the target's own tokens."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

log = start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

import numpy as np  # noqa: E402

from reachability.hard_prompt import markdown_table, recovery  # noqa: E402
from reachability.metrics import take_best  # noqa: E402
from reachability.models import load_tokenizer  # noqa: E402
from reachability.results import best_runs  # noqa: E402
from reachability.storage import jsonable, read_h5  # noqa: E402

cfg = snakemake.config
with open(snakemake.input.hard) as f:  # the hard prompts' metrics.json: each target's best restart
    hard = json.load(f)["conditions"]["text"]
hard_cosine, hard_mse = best_runs(hard)
ids = np.flatnonzero(np.isfinite(hard_mse))  # targets whose runs all diverged have no tokens to show
tokens = read_h5(snakemake.input.hard_runs, ["tokens"])[0]["tokens"][0]  # [target, restart, S]
found = take_best(tokens, np.array(hard["per_target"]["best_restart"]))[ids]
original = read_h5(snakemake.input.pool, ["tokens"])[0]["tokens"][ids]  # Exp 1's target t is pool sequence t
with open(snakemake.input.soft) as f:
    soft_cosine, soft_mse = best_runs(json.load(f)["conditions"]["real"])
projected = {}
if snakemake.input.projected:  # the analysis of Exp 1's solutions (analysis.enabled)
    with open(snakemake.input.projected[0]) as f:
        by_target = json.load(f)["conditions"]["real"]["manifold"]["projected_by_target"]
    projected = {t: (m, c) for t, m, c in zip(by_target["target_id"], by_target["best_mse"], by_target["cosine"])}
tokenizer = load_tokenizer(cfg["model"]["name"], cfg["model"]["revision"])
recovered = recovery(found, original)
rows = [{
    "target_id": t, "soft_mse": float(soft_mse[t]), "soft_cosine": float(soft_cosine[t]),
    "projected_mse": projected.get(t, (None, None))[0], "projected_cosine": projected.get(t, (None, None))[1],
    "hard_mse": float(hard_mse[t]), "hard_cosine": float(hard_cosine[t]), "hard_tokens": found[k],
    "hard_text": tokenizer.decode(found[k].tolist()), "target_text": tokenizer.decode(original[k].tolist()),
    "exact": bool(recovered["exact"][k]), "position_match": float(recovered["position_match"][k]),
    "token_overlap": float(recovered["token_overlap"][k]),
} for k, t in enumerate(ids.tolist())]


def median(key):
    values = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
    return float(np.median(values)) if values else None


summary = {
    "n_targets": len(rows), "soft_median_mse": median("soft_mse"), "projected_median_mse": median("projected_mse"),
    "hard_median_mse": median("hard_mse"), "hard_median_cosine": median("hard_cosine"),
    "exact_match_rate": float(recovered["exact"].mean()), "position_match_mean": float(recovered["position_match"].mean()),
    "token_overlap_mean": float(recovered["token_overlap"].mean()),
}
with open(snakemake.output.json, "w") as f:
    json.dump(jsonable({"summary": summary, "targets": rows}), f, indent=1)
with open(snakemake.output.table, "w") as f:
    f.write(markdown_table(rows, summary))
log.info("hard prompts: median MSE %s (soft %s, projected %s); exact recovery %.0f%%", summary["hard_median_mse"],
         summary["soft_median_mse"], summary["projected_median_mse"], 100 * summary["exact_match_rate"])
