"""Rule place_errors: each condition's reachability error on the perturbation curve at the
study's site, per position: the ε of the error, the KL the curve predicts at that ε, and the KL
measured from the achieved residuals (both KL(reference ‖ moved) at one position)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

from reachability.placement import place  # noqa: E402
from reachability.results import read_solutions  # noqa: E402

with open(snakemake.input.curves) as f:
    perturbation = json.load(f)
site, epsilons = snakemake.params.site, perturbation["epsilons"]
curves = {kind: c["kl_at_token"] for kind, c in perturbation["curves"][site].items()}
points, rows = {}, []
for label, s in read_solutions(snakemake.input.solutions).items():
    eps, measured = s["functional"]["epsilon"], s["functional"]["kl"]
    iso, real = (place(epsilons, curves[kind], eps, measured) for kind in ("isotropic", "toward_real"))
    points[label] = (iso["median_epsilon"], iso["median_measured_kl"])
    rows.append(f"| {label} | {iso['median_epsilon']:.3g} | {iso['beyond_curve']:.0%} | {iso['median_predicted_kl']:.3g} "
                f"| {real['median_predicted_kl']:.3g} | {iso['median_measured_kl']:.3g} |")
with open(snakemake.output.table, "w") as f:
    f.write(
        f"Reachability errors on the perturbation curve at {site}, per position. Curve: KL(unperturbed ‖ perturbed) "
        f"of the next-token distribution at the one token (position {perturbation['token_index']}) whose residual was "
        "moved by ε × RMS. Measured: KL(target ‖ achieved) at each position of each target's best run, with that "
        "position's ε = ‖achieved − target‖ / RMS(target). Medians over targets and positions. Both sides are one "
        "position's KL in the same direction; they still differ because the achieved residual is wrong at every "
        "position (at sites before the last layer earlier positions move later predictions) and its error is not a "
        "random direction. ε beyond the curve's range is clamped to its last point.\n\n")
    f.write("| condition | ε of the error | ε beyond the curve | KL predicted (isotropic) | KL predicted (toward real) "
            "| KL measured |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
with open(snakemake.output.points, "w") as f:
    json.dump({"site": site, "epsilons": epsilons, "curve": curves["isotropic"], "points": points}, f, indent=1)
