"""Rule plot_analysis: the embedding-manifold and functional-reachability figures."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import numpy as np

from reachability import plots
from reachability.results import read_solutions

rows, dpi = read_solutions(snakemake.input.solutions, snakemake.config, snakemake.params.steps), snakemake.params.plots["dpi"]
plots.boxes(snakemake.output.manifold,
            {k: np.array(s["manifold"]["nearest_token_cosine_sample"], dtype=float) for k, s in rows.items()},
            "cosine to the nearest token embedding", "Optimised prompts vs the token embeddings", dpi=dpi)
plots.boxes(snakemake.output.functional,
            {k: np.array(s["functional"]["per_target_mean_kl"], dtype=float) for k, s in rows.items()},
            "KL(target ‖ achieved), mean over positions", "Functional reachability", log=True, dpi=dpi)
first = next((k for k, s in rows.items() if "text" in s["trajectories"]), next(iter(rows), None))  # Exp 1 real, if analysed
plots.trajectories(snakemake.output.trajectories, first, rows[first]["trajectories"] if first else None, dpi=dpi)
