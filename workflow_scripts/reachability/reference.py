"""The research log's own table: facts quoted from the log of a real run of this study (Pythia-160M,
one RTX 4090, February 2026; docs/research_log.md), set beside ours where the setting is its own.

Its numbers are the median over targets of each target's best restart, under its objective and at
its site; they are comparable with a study only where the model, the site and the objective are
the log's (`differences` says which are not), so `results/conditions.md` prints them as columns
there and otherwise says why not.
"""

from __future__ import annotations

SOURCE = "the research log (Pythia-160M, hidden_states[6], (1 − cos) + 0.01 · MSE; docs/research_log.md)"
SETTING = {"model.name": "EleutherAI/pythia-160m", "model.revision": None, "site": ("hidden_states", 6),
           "optimizer.loss": {"kind": "cosine_mse", "mse_weight": 0.01}}  # its final checkpoint
MEDIAN_COSINE = {  # by our labels for its conditions
    "Exp 1 real": 0.9960, "Exp 2a matched": 0.9771, "Exp 2b isotropic": 0.9708,
    "Exp 3 α=-0.5": 0.9854, "Exp 3 α=0": 0.9958, "Exp 3 α=0.25": 0.9915, "Exp 3 α=0.5": 0.9880,
    "Exp 3 α=0.75": 0.9916, "Exp 3 α=1": 0.9959, "Exp 3 α=1.5": 0.9864, "Exp 3 α=2": 0.9731,
    "Ablation no ffn": 0.9949, "Ablation no attention": 0.9792, "Exp 4p f=0.1": 0.9634}
MEDIAN_MSE = {"Exp 1 real": 0.021, "Exp 2a matched": 0.091, "Exp 2b isotropic": 1.95}


def differences(config: dict) -> list[str]:
    """The config keys of the log's setting that this study does not share ([]: its own)."""
    ours = {"model.name": config["model"]["name"], "model.revision": config["model"]["revision"],
            "site": (config["site"]["kind"], int(config["site"]["layer"])), "optimizer.loss": config["optimizer"]["loss"]}
    return [key for key, value in SETTING.items() if ours[key] != value]


def _fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def conditions_markdown(rows: dict[str, dict], budgets: list[dict], config: dict) -> str:
    """results/conditions.md: each step budget's line, then one row per condition (its metrics
    entry, by label); with the log's setting, the log's median cosine and MSE beside ours, else a
    line naming what differs."""
    apart = differences(config)
    lines = [f"Step budget: {b['steps']} steps. {b['reason']}.\n" for b in budgets]
    head = "| condition | median cosine | median best MSE | reached | diverged runs | needs more steps |"
    rule = "|---|---|---|---|---|---|"
    if not apart:
        head, rule = head + " research log: median cosine | research log: median MSE |", rule + "---|---|"
    lines += [head, rule]
    for label, s in rows.items():
        cells = [label, _fmt(s["median_cosine"], ".4f"), _fmt(s["median_best_final_mse"], ".4g"),
                 f"{s['reached_fraction']:.0%}", str(s["n_diverged"]), "yes" if s["plateau"]["needs_more_steps"] else "no"]
        if not apart:
            cells += [_fmt(MEDIAN_COSINE.get(label), ".4f"), _fmt(MEDIAN_MSE.get(label), ".3g")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Beside ours: {SOURCE}, quoted." if not apart else
                 f"The log's table ({SOURCE}) is set beside this one only in its own setting; this study differs "
                 f"in {', '.join(apart)} (configs/research_log.yaml is the log's).")
    return "\n".join(lines) + "\n"
