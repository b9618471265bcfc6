"""Rule plot_ablation: per-target cosine of the full model and of each ablation."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

from reachability import plots  # noqa: E402
from reachability.results import best_runs  # noqa: E402
from reachability.storage import read_json  # noqa: E402

full, _ = best_runs(read_json(snakemake.input.full)["conditions"]["real"])
ablated = {c.replace("_", " "): best_runs(s)[0] for c, s in read_json(snakemake.input.ablated)["conditions"].items()}
n = min(len(cos) for cos in ablated.values())
plots.boxes(snakemake.output.figure, {"full": full[:n], **ablated}, "per-target mean cosine (best restart)",
            f"Ablations on {n} of Exp 1's targets", dpi=snakemake.params.plots["dpi"])
