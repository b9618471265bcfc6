"""Rule place_errors: each condition's reachability error as an ε on the perturbation curve at
the study's site, the KL that ε predicts, and the KL measured from the achieved residuals."""

import json

from reachability import plots
from reachability.perturbation import predicted_kl
from reachability.pipeline import start_log

start_log(snakemake.log[0])
with open(snakemake.input.curves) as f:
    perturbation = json.load(f)
site, epsilons = snakemake.params.site, perturbation["epsilons"]
curve = perturbation["curves"][site]
points, rows = {}, []
for path in snakemake.input.solutions:
    with open(path) as f:
        solutions = json.load(f)
    for condition, s in solutions["conditions"].items():
        label = f"{solutions['experiment']} {condition}"
        eps, measured = s["functional"]["median_epsilon"], s["functional"]["median_kl"]
        iso, real = (float(predicted_kl(epsilons, curve[k], eps)) for k in ("isotropic", "toward_real"))
        points[label] = (eps, measured)
        beyond = " (beyond the curve)" if eps > max(epsilons) else ""
        rows.append(f"| {label} | {eps:.3g}{beyond} | {iso:.3g} | {real:.3g} | {measured:.3g} |")
with open(snakemake.output.table, "w") as f:
    f.write(f"Perturbation curve at {site}: one token perturbed, KL over that token and the ones after it. "
            "The reachability error is spread over every position and is not random, so the prediction "
            "is a scale, not an equality; ε beyond the curve's range is clamped to its last point.\n\n")
    f.write("| condition | ε of the error | KL predicted (isotropic) | KL predicted (toward real) | KL measured |\n")
    f.write("|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
plots.placement(snakemake.output.figure, epsilons, curve["isotropic"], points, site, snakemake.params.plots["dpi"])
