"""Rule place_errors: each condition's reachability error on the placement curve at the study's
site, per position: the ε of the error, the KL the curve predicts at that ε and the KL measured
from the achieved residuals (both medians over the same points; points outside the curve's
range, or whose KL float32 does not resolve, are flagged, not placed)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability.placement import RESOLUTION, place
from reachability.records import expected, load
from reachability.results import read_solutions
from reachability.storage import write_json, writing

cfg, steps = snakemake.config, snakemake.params.steps
curve = load(cfg, snakemake.input.curve, steps)
placed, rows = {}, []
for label, s in read_solutions(snakemake.input.solutions, cfg, steps).items():
    eps, measured = s["functional"]["epsilon"], s["functional"]["kl"]
    iso, real = (place(curve["epsilons"], curve["curves"][kind], eps, measured) for kind in ("isotropic", "toward_real"))
    placed[label] = {"isotropic": iso, "toward_real": real}

    def g(x):
        return "–" if x is None else f"{x:.3g}"

    rows.append(f"| {label} | {g(iso['median_epsilon'])} | {iso['n_placed']} of {iso['n_points']} "
                f"| {iso['below_range']:.0%} / {iso['above_range']:.0%} | {iso['below_resolution']:.0%} "
                f"| {g(iso['median_predicted_kl'])} "
                f"| {g(real['median_predicted_kl'])} | {g(iso['median_measured_kl'])} | {g(iso['ratio'])} |")
with writing(snakemake.output.table) as f:
    f.write(
        f"Reachability errors on the perturbation curve at {curve['site']}, per position. The curve: "
        f"{curve['statistic']}, on {len(curve['epsilons'])} log-spaced eps from {min(curve['epsilons']):.3g} to "
        f"{max(curve['epsilons']):.3g}{' (spanning the errors)' if curve['derived'] else ''}, interpolated in "
        "log-log. Measured: KL(target ‖ achieved) at each position of each target's best run, with that position's "
        "eps = ‖achieved − target‖ / RMS(target). Both sides: the median over the same (target, position) points; "
        "points outside the curve's range are flagged (below / above) and not placed, and so are points whose measured "
        f"KL is below float32's resolution ({RESOLUTION:.2g}: rounding, not a measurement; the curve's own "
        "points below it are left out of the curve). What still differs: an "
        "error's direction is not random — predicted/measured far from 1 says the errors lie in more (< 1) or "
        "less (> 1) sensitive directions than random ones.\n\n")
    f.write("| condition | eps of the error | placed | below / above the range | below resolution "
            "| KL predicted (isotropic) | KL predicted (toward real) | KL measured | predicted / measured (isotropic) |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
write_json(snakemake.output.points, {"site": curve["site"], "epsilons": curve["epsilons"],
                                     "curve": curve["curves"]["isotropic"], "placed": placed},
           expected(cfg, snakemake.output.points, steps))
