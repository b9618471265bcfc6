"""The offline demo DAG end to end with real Snakemake, then what a rerun would redo."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from equality import assert_same_losses, mean_square
from reachability.sites import Site
from reachability.storage import read_attrs, read_h5
from workflow_helpers import (AGENDA_ONLY, ROOT, demo_config, planned_jobs, planned_outputs, snakemake, study_packs,
                              study_runs)

EXPERIMENTS = ("experiment1", "experiment2a", "experiment2b", "experiment3", "experiment4", "ablation", "hard_prompt",
               "prefix_steering", "experiment4p")
BEYOND = ("ablation.png", "layer_sweep.png", "embedding_manifold.png", "functional_reachability.png",
          "perturbation/kl_vs_epsilon.png", "perturbation/placement.png", "hard_prompt/hard_vs_soft.png",
          "compare/reachability_across_models.png", "boundary.png", "layer_sweep/boundary.png", "ladder.png",
          "layer_trajectories.png", "prefix_steering/steering.png")
FIGURES = ("loss_curves.png", "final_mse_histogram.png", "cosine_by_position.png")


def test_every_output_exists_and_every_png_decodes(demo):
    pngs = [demo / "results" / e / f for e in EXPERIMENTS for f in FIGURES]
    pngs += [demo / "results" / "summary.png", demo / "results" / "experiment4_transition.png",
             demo / "results" / "experiment4p_transition.png",
             demo / "results" / "experiment3" / "reachability_curves.png"]
    pngs += [demo / "results" / name for name in BEYOND]
    for png in pngs:
        image = imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0.01, png
    table = (demo / "results" / "conditions.md").read_text()
    # Exp 1, Exp 2a's five methods, 2b; 8 α, 11 f; prefix steering's 2 ε; the ablation's 2; the text experiment's 5;
    # Exp 4p's 4 f (its own steps)
    assert table.count("\n| ") == 1 + 1 + 5 + 1 + 8 + 11 + 2 + 2 + 5 + 4 and "Exp 3 α=-0.5" in table and "Exp 4 f=1 " in table
    assert "differs in model.name, site, optimizer.loss" in table  # the research log's table: its own setting only
    assert table.startswith("Step budget: ")


GUIDE = ("Exp 1 all converge to ~0", "Exp 1 some don't converge", "Exp 2a ≈ Exp 1", "Exp 2b much worse than 2a",
         "Exp 2b ≈ Exp 2a", "Exp 3 smooth across α ∈ [0, 1]", "Exp 3 sharp degradation at α > 1",
         "Exp 4 sharp transition", "Exp 4 gradual degradation")


def test_findings_answer_every_line_of_the_guide(demo):
    findings = json.loads((demo / "results" / "findings.json").read_text())
    rows = {r["observation"]: r for r in findings["findings"]}
    for line in GUIDE:
        row = next(r for o, r in rows.items() if o.startswith(line))
        assert row["verdict"] in ("holds", "does not hold", "inconclusive"), line
        assert "not measured" not in row["note"], line
    assert rows["Exp 1 all converge to ~0"]["verdict"] != rows["Exp 1 some don't converge"]["verdict"]
    fit = findings["experiment4_fit"]
    assert fit["n_targets"] == 4 and 0 < len(fit["per_target"]) <= 4  # a logistic per target (where it fits)
    assert "f0_median" not in fit or 0 <= fit["f0_iqr"][0] <= fit["f0_median"] <= fit["f0_iqr"][1] <= 1
    tested = [r for r in findings["findings"] if r["p"] is not None]
    assert tested and all(r["p_adjusted"] >= r["p"] for r in tested)  # Holm over the tested rows
    assert all(r["restarts"] == [1, 1] for r in findings["findings"] if r["observation"].startswith("Ablation"))
    table = (demo / "results" / "findings.md").read_text()
    assert all(line in table for line in GUIDE) and table.count("| **") == len(rows)
    assert any(o.startswith("Ablation no ffn") for o in rows)


def test_metrics_have_their_fields_and_provenance(demo):
    for experiment in EXPERIMENTS:
        metrics = json.loads((demo / "results" / experiment / "metrics.json").read_text())
        prov = metrics["provenance"]
        assert prov["model"] == "resources/demo-model" and prov["site"] == "hidden_states[4]" and prov["layer"] == 4
        assert len(prov["config_hash"]) == 16 and prov["versions"]["torch"] and prov["devices"][0].startswith("cpu")
        assert prov["optimisation_wall_s"] > 0
        # the demo asks for capture, on the CPU: every batch (GCG's too) says why it ran eagerly; the inversion
        # is never captured
        assert prov["batches"] and all(b["mode"] == "eager" and b["reason"] in (
            "no CUDA graphs on cpu", "inversion: not capturable") for b in prov["batches"])
        positions = 10 if experiment == "prefix_steering" else 20  # prefix steering: scored on the text after the prompt
        for summary in metrics["conditions"].values():
            per_target = summary["per_target"]
            n = summary["n_targets"]
            assert len(per_target["best_final_mse"]) == n == len(per_target["restart_sd_log10"])
            assert np.array(per_target["final_mse"]).shape == (n, summary["n_restarts"])
            assert np.array(per_target["cosine_by_position"]).shape == (n, positions)
            assert len(summary["cosine_by_position"]["mean"]) == positions
            assert 0 <= summary["reached_fraction"] <= 1 and "needs_more_steps" in summary["plateau"]
            assert summary["n_diverged"] == 0
        assert metrics["warnings"] == ([] if experiment != "experiment2a" else metrics["warnings"][:1])
    assert "at least 1000" in json.loads((demo / "results" / "experiment2a" / "metrics.json").read_text())["warnings"][0]


def test_real_targets_are_easier_than_isotropic_random_ones(demo):
    def median(e, c):
        return json.loads((demo / "results" / e / "metrics.json").read_text())["conditions"][c]["median_best_final_mse"]

    assert median("experiment1", "real") < 0.1 * median("experiment2b", "isotropic")
    assert median("experiment1", "real") < median("experiment2a", "matched")


def test_exp3_endpoints_equal_exp1_targets(demo):
    """α = 1 of pair p is real target 2p: the same target tensor, built by two routes."""
    from reachability.storage import read_targets

    def targets(experiment):
        return read_targets(sorted(map(str, (demo / "results" / "targets" / "hs4" / experiment).glob("*.h5"))), {})

    real, exp3, ablation = targets("experiment1"), targets("experiment3"), targets("ablation")
    assert len(real) == 8 and len(exp3) == 4 * 8 and len(ablation) == 8 * 2
    for p in range(4):
        np.testing.assert_array_equal(exp3["a1", p], real["real", 2 * p])  # 1·A + 0·B is A exactly
        np.testing.assert_array_equal(exp3["a0", p], real["real", 2 * p + 1])
    for t in range(8):
        np.testing.assert_array_equal(ablation["no_ffn", t], real["real", t])


def test_every_hdf5_file_records_what_made_it(demo):
    sites = {"hidden_states[2]", "hidden_states[4]", "block_output[4]"}
    for path in (demo / "results").rglob("*.h5"):
        attrs = read_attrs(path)
        model = "resources/demo-model-32" if "models" in path.parts else "resources/demo-model"  # a compared model's
        assert attrs["model"] == model and attrs["seq_len"] == 20, path
        assert attrs["site"] in sites if "pool" not in path.parts else "site" not in attrs, path
        if "runs" in path.parts and path.parent.name != "runs":
            assert attrs["site"] == str(Site.from_tag(path.parts[-2])), path


def test_beyond_the_agenda_tables(demo):
    results = demo / "results"
    ablation = (results / "ablation.md").read_text()
    assert "| no ffn |" in ablation and "| no attention |" in ablation and "| full model |" in ablation
    correlations = re.findall(r"^\| (full model vs no ffn|full model vs no attention|no ffn vs no attention) \| (\d+)"
                              r" \| ([+-]\d\.\d\d) \[([+-]\d\.\d\d), ([+-]\d\.\d\d)\]", ablation, flags=re.M)
    assert [c[0] for c in correlations] == ["full model vs no ffn", "full model vs no attention", "no ffn vs no attention"]
    assert all(int(n) == 8 and float(low) <= float(r) <= float(high) for _, n, r, low, high in correlations)
    sweep = json.loads((results / "layer_sweep.json").read_text())["results"]
    assert set(sweep) == {"experiment1", "experiment2b"} and list(sweep["experiment1"]) == ["hs2", "hs4", "block4"]
    solutions = json.loads((results / "experiment1" / "solutions.json").read_text())["conditions"]["real"]
    manifold, functional = solutions["manifold"], solutions["functional"]
    assert [len(e["tokens"]) for e in manifold["decoded_examples"]] == [20, 20, 20]
    assert len(manifold["nearest_token_cosine_sample"]) == manifold["n_prompts"] * 20 == 16 * 20
    assert manifold["hard_median_mse"] > manifold["soft_median_mse"]  # text reaches less than a free vector
    assert np.array(functional["kl"]).shape == np.array(functional["epsilon"]).shape == (8, 20)
    isotropic = json.loads((results / "experiment2b" / "solutions.json").read_text())["conditions"]["isotropic"]
    assert functional["median_kl"] < 0.1 * isotropic["functional"]["median_kl"]  # reached targets predict alike
    assert functional["median_epsilon"] < isotropic["functional"]["median_epsilon"]
    curves = json.loads((results / "perturbation" / "kl_vs_epsilon.json").read_text())
    assert set(curves["curves"]) == {"block1", "block2", "block4", "hs4"}  # the study's site is added
    for by_kind in curves["curves"].values():
        for curve in (c for kind in by_kind.values() for c in kind.values()):
            assert np.all(np.diff(curve) > 0)  # more perturbation, more change in the predictions
    # Exp 1; Exp 2a's soft prompt, norm ball, mixture and PEZ (the inversion has no prompt to analyse); 2b; 3; 4
    assert (results / "perturbation" / "placement.md").read_text().count("| experiment") == 1 + 4 + 1 + 8 + 11 + 4  # + Exp 4p's f


def test_every_analysed_target_is_one_row_of_the_tidy_table_beside_its_boundary(demo):
    """results/targets.csv: Exp 1, 2a, 2b (8 each), Exp 3 (4 pairs x 8 α), Exp 4 (4 x 11 f); the
    boundary read from it, and its row in the findings."""
    import csv

    from reachability import tidy

    rows = tidy.from_csv((demo / "results" / "targets.csv").read_text())
    assert len(rows) == 3 * 8 + 4 * 8 + 4 * 11 + 4 * 4 and list(rows[0]) == list(tidy.COLUMNS)  # + Exp 4p
    assert {r["site"] for r in rows} == {"hs4"} and all(r["whitened"] > 0 and r["nearest"] >= 0 for r in rows)
    metrics = json.loads((demo / "results" / "experiment3" / "metrics.json").read_text())["conditions"]["a0.5"]
    mine = [r for r in rows if r["experiment"] == "experiment3" and r["condition"] == "a0.5"]
    assert [r["best_mse"] for r in mine] == pytest.approx(metrics["per_target"]["best_final_mse"])
    assert [r["reached"] for r in mine] == metrics["per_target"]["reached"]
    real = [r for r in rows if r["experiment"] == "experiment1"]
    assert all(r["nearest"] > 0 for r in real) and np.median([r["whitened"] for r in real]) < 2
    result = json.loads((demo / "results" / "boundary.json").read_text())["sites"]["hs4"]
    assert result["whitened"]["pooled"]["n_targets"] == len(rows)
    findings = json.loads((demo / "results" / "findings.json").read_text())["findings"]
    row, control = [r for r in findings if r["observation"].startswith("Reached and unreached targets separate")]
    assert row["verdict"] in ("holds", "does not hold", "inconclusive") and row["p_adjusted"] is not None
    assert row["uses_p"] and "norm" in control["observation"] and not control["uses_p"]
    with open(demo / "results" / "layer_sweep" / "targets.csv") as f:
        sweep = list(csv.DictReader(f))
    assert {r["site"] for r in sweep} == {"hs2", "hs4", "block4"} and len(sweep) == 3 * 2 * 8
    assert set(json.loads((demo / "results" / "layer_sweep" / "boundary.json").read_text())["sites"]) == \
        {"hs2", "hs4", "block4"}


def test_the_html_report_holds_every_figure(demo):
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(demo),
                             "--configfile", str(demo / "study.yaml"), "--report", str(demo / "report.html")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (demo / "report.html").read_text(errors="replace")
    for name in (*FIGURES, "summary.png", "experiment4_transition.png", "reachability_curves.png", "findings.md",
                 "hard_prompts.md", "models.md", *(b.split("/")[-1] for b in BEYOND)):
        assert name in html, name
    assert "Beyond the agenda" in html and "experiment3" in html and "Summary" in html
    assert "Hard prompt" in html and "Across models" in html
    for label in ("Exp 1", "Exp 2a", "Exp 3", "Exp 4", "Ablation"):  # the registry's labels are the categories
        assert label in html, label


def test_the_agenda_dry_run_lists_every_output_it_names(tmp_path):
    """The default config, with no network and no weights: few big packs and every figure."""
    from workflow_helpers import ROOT

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    pending = snakemake(tmp_path, config, "--dry-run")  # Exp 1 first; the rest once it decided the budget
    assert pending.returncode == 0, pending.stderr[-3000:]
    assert planned_jobs(pending)["optimise_pack"] == 1 and planned_jobs(pending)["step_budget"] == 1
    assert "step budget: pending" in pending.stdout + pending.stderr
    config["optimizer"]["extend_steps"] = None  # no budget to decide: every pack is planned at once
    result = snakemake(tmp_path, config, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    # one pack per experiment (Exp 4's 1650 runs too: the remainder joins the last pack), the
    # ablation's 300 runs, the hard prompts' 150, and the sweep's 40 runs at each of its 5 other sites x 2 experiments
    assert planned_jobs(result)["optimise_pack"] == 5 + 1 + 1 + 10
    text = result.stdout
    off = ("prefix_steering", "experiment4p")  # off in config.yaml, like their comparisons
    agenda = [e for e in EXPERIMENTS if e not in off]
    for name in [f"results/{e}/{f}" for e in agenda for f in (*FIGURES, "metrics.json")] + [
            "results/summary.png", "results/experiment4_transition.png", "results/conditions.md"] + [
            f"results/{b}" for b in BEYOND if not b.startswith(("compare/", *(f"{e}/" for e in off)))]:
        assert name in text, name


@pytest.mark.parametrize("source,runs_per_job", [("config.yaml", 7), ("config.yaml", 1024), ("demo.yaml", 1)])
def test_every_pack_is_big_or_its_experiments_whole_and_holds_each_run_once(tmp_path, source, runs_per_job):
    """The plan's packs: the agenda's at 7 and 1024 runs per job, the demo's at one job per run."""
    config = yaml.safe_load((ROOT / source).read_text())
    config["engine"]["runs_per_job"] = runs_per_job
    config["optimizer"]["extend_steps"] = None  # every pack planned at once
    for section in ("layer_sweep", "analysis", "perturbation"):
        config[section]["enabled"] = False
    result = snakemake(tmp_path, config, "--dry-run")
    packs = {}
    for out in planned_outputs(result, "optimise_pack"):
        experiment, _, site, name = out.removeprefix("results/").removesuffix(".h5").split("/")
        packs.setdefault((experiment, site), []).append(tuple(map(int, name.split("_s")[0].split("-"))))
    runs = study_runs(yaml.safe_load((ROOT / source).read_text()))  # from the registry and the config
    assert runs["experiment4"] == (1650 if source == "config.yaml" else 44)
    assert result.returncode == 0 and {e for e, _ in packs} == set(runs)
    for (experiment, _), bounds in packs.items():
        bounds.sort()
        assert bounds[0][0] == 0 and bounds[-1][1] == runs[experiment]
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # each run exactly once
        assert all(stop - start >= runs_per_job or stop - start == runs[experiment] for start, stop in bounds)
        if runs_per_job == 1:
            assert len(bounds) == runs[experiment]


@pytest.mark.slow
def test_the_caches_of_a_model_are_one_job_and_a_new_site_adds_one_for_itself(tmp_path):
    """Every missing residual cache comes from one job (one model load, one forward); adding a
    site then makes that site's cache alone, and a cache made stale by a new pool is remade
    alone, by site."""
    config = demo_config(**{**AGENDA_ONLY, "layer_sweep.enabled": True,
                            "layer_sweep.sites": [{"kind": "hidden_states", "layer": 2}]})
    caches = [f"results/cache/{site}/pool_residuals.h5" for site in ("hs4", "hs2", "block4")]
    result = snakemake(tmp_path, config, "--dry-run", *caches[:2])
    assert planned_outputs(result, "cache_residuals") == caches[:2] and "cache_site" not in planned_jobs(result)
    result = snakemake(tmp_path, config, "--cores", "2", *caches[:2])
    assert result.returncode == 0, result.stderr[-3000:]
    made = {path: (tmp_path / path).stat().st_mtime for path in caches[:2]}
    config["layer_sweep"]["sites"].append({"kind": "block_output", "layer": 4})
    added = snakemake(tmp_path, config, "--dry-run", *caches)
    assert planned_jobs(added) == {"cache_residuals": 1} and planned_outputs(added, "cache_residuals") == caches[2:]
    assert snakemake(tmp_path, config, "--cores", "2", *caches).returncode == 0
    assert {path: (tmp_path / path).stat().st_mtime for path in caches[:2]} == made  # the others untouched
    config["dataset"]["min_chars"] += 1  # another pool: every cache is out of date
    stale = snakemake(tmp_path, config, "--dry-run", *caches)
    assert planned_jobs(stale) == {"extract_pool": 1, "cache_site": 3}
    assert sorted(planned_outputs(stale, "cache_site")) == sorted(caches)


def test_a_dry_run_after_the_demo_has_nothing_to_do(demo):
    assert planned_jobs(snakemake(demo, demo_config(), "--dry-run")) == {}


def test_reordering_config_keys_is_not_a_reason_to_rerun(demo):
    def reversed_keys(value):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))} if isinstance(value, dict) else value

    assert planned_jobs(snakemake(demo, reversed_keys(demo_config()), "--dry-run")) == {}


def test_batch_size_and_capture_are_no_reason_to_rerun(demo):
    assert planned_jobs(snakemake(demo, demo_config(**{"engine.batch_size": 3, "engine.capture": False}),
                                  "--dry-run")) == {}


def test_a_plot_option_reruns_only_plots(demo):
    jobs = planned_jobs(snakemake(demo, demo_config(**{"plots.dpi": 90}), "--dry-run"))
    assert set(jobs) == {"plot_experiment", "plot_summary", "plot_transition", "plot_perturbation", "plot_ablation",
                         "plot_layer_sweep", "plot_analysis", "plot_placement", "plot_reachability_curves",
                         "plot_hard_prompts", "plot_models", "plot_boundary", "plot_sweep_boundary",
                         "plot_ladder", "plot_steering", "all"}  # drawing only
    assert jobs["plot_experiment"] == 9 and "optimise_pack" not in jobs and "aggregate" not in jobs


def test_a_metrics_option_reruns_exactly_the_jobs_whose_numbers_it_changes(demo):
    """reached_threshold changes the metrics and what reads them, not the step budget (only the
    plateau settings decide it) nor any GPU job."""
    jobs = planned_jobs(snakemake(demo, demo_config(**{"metrics.reached_threshold": 0.02}), "--dry-run"))
    assert jobs["aggregate"] == 9 and jobs["model_tiny_32_aggregate"] == 2 and {"findings", "ladder"} <= set(jobs)
    assert not {"step_budget", "model_tiny_32_step_budget", "optimise_pack", "extend_pack", "analyse_solutions",
                "cache_residuals", "perturb_residuals", "placement_curve"} & set(jobs), jobs


def test_more_targets_add_only_the_new_runs(demo):
    result = snakemake(demo, demo_config(**{"experiments.experiment1.n_targets": 16}), "--dry-run")
    jobs = planned_jobs(result)
    assert planned_outputs(result, "optimise_pack") == ["results/experiment1/runs/hs4/16-32_s300.h5"]
    assert jobs["build_targets"] == 1 and jobs["step_budget"] == 1  # Exp 1 grew: its verdict is asked again
    assert "extract_pool" not in jobs and "cache_residuals" not in jobs


def test_more_targets_recompute_at_most_the_last_pack(demo):
    """Exp 4's 44 runs are packs 0-16 and 16-44; one more target makes 55 runs: 16-44 becomes
    16-32 and 32-55, and 0-16 is kept."""
    steps = json.loads((demo / "results" / "step_budget.json").read_text())["steps"]
    result = snakemake(demo, demo_config(**{"experiments.experiment4.n_targets": 5}), "--dry-run")
    assert sorted(planned_outputs(result, "optimise_pack")) == [
        f"results/experiment4/runs/hs4/16-32_s{steps}.h5", f"results/experiment4/runs/hs4/32-55_s{steps}.h5"]


def test_more_restarts_renumber_only_that_experiments_runs(demo):
    result = snakemake(demo, demo_config(**{"experiments.experiment4.restarts": 2}), "--dry-run")
    outputs = planned_outputs(result, "optimise_pack")
    assert len(outputs) == 5 and all(o.startswith("results/experiment4/runs/hs4/") for o in outputs)
    assert planned_jobs(result)["aggregate"] == 1 and "cache_residuals" not in planned_jobs(result)


@pytest.mark.parametrize("key,value", [("optimizer.steps", 301), ("optimizer.lr", 0.02), ("engine.precision", "bf16"),
                                       ("optimizer.loss", {"kind": "cosine_mse", "mse_weight": 0.01})])
def test_optimiser_changes_rerun_every_optimisation(demo, key, value):
    """Exp 1's packs rerun and decide the budget again; the other packs wait for it (and then
    rerun: their params or their steps changed). Without a budget to decide, all rerun at once.
    The demo's Exp 4p (one pack) sets its own steps: it waits for no budget and reruns at once when
    its params change, and not at all for the study's steps."""
    own = key != "optimizer.steps"  # whether Exp 4p's pack changes too
    jobs = planned_jobs(snakemake(demo, demo_config(**{key: value}), "--dry-run"))
    assert jobs["optimise_pack"] == 1 + own and jobs["step_budget"] == 1 and "build_targets" not in jobs
    no_budget = planned_jobs(snakemake(demo, demo_config(**{key: value, "optimizer.extend_steps": None}), "--dry-run"))
    assert no_budget["optimise_pack"] == study_packs(demo_config()) - (not own) and "extract_pool" not in no_budget


def test_a_run_in_its_pack_equals_the_same_run_alone(demo):
    """Pack 16-44 of Exp 4 held 28 runs of 3 targets x 11 conditions; run 20 (target 1, f0.9)
    optimised alone, from its own identity, gives the same curve and prompt."""
    import torch

    from reachability.forward import residual_function
    from reachability.models import load_model
    from reachability.methods import Soft, initial_prompt
    from reachability.optimize import optimize_batch
    from reachability.storage import read_targets
    from reachability.runs import Layout
    config = demo_config()
    (path,) = (demo / "results" / "experiment4" / "runs" / "hs4").glob("16-44_s*.h5")
    pack, attrs = read_h5(path)
    run = Layout(tuple(attrs["conditions"]), attrs["restarts"]).run("experiment4", 20)
    i = 20 - 16
    assert (attrs["conditions"][pack["condition"][i]], pack["target_id"][i], pack["restart"][i]) == (
        run.condition, run.target_id, run.restart) == ("f0.9", 1, 0)
    target = read_targets([str(demo / "results" / "targets" / "hs4" / "experiment4" / "16-44.h5")], {})
    lm = load_model(str(demo / config["model"]["name"]))
    alone = optimize_batch(residual_function(lm, Site("hidden_states", 4)),
                           torch.from_numpy(target[run.condition, run.target_id])[None],
                           {"prompt": initial_prompt(run, 20, lm.d_model)[None]}, Soft(lr=config["optimizer"]["lr"]),
                           attrs["steps"])
    assert_same_losses(pack["loss"][i], alone.loss[0], mean_square(target[run.condition, run.target_id]))
    np.testing.assert_allclose(pack["prompt"][i], alone.prompt[0], rtol=1e-4, atol=1e-5)


def test_rule_scripts_use_the_checkouts_library_not_an_installed_one(tmp_path):
    """Another `reachability` first on the search path (an installed copy, another clone) must
    not be what the rule scripts run."""
    import os

    impostor = tmp_path / "elsewhere" / "reachability"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("raise ImportError('the impostor library was imported')\n")
    env = {**os.environ, "PYTHONPATH": str(impostor.parent)}
    from workflow_helpers import snakemake_command

    result = subprocess.run(snakemake_command(tmp_path / "work", demo_config(), "--cores", "1", "results/pool/tokens.h5"),
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "impostor" not in (tmp_path / "work" / "results" / "logs" / "extract_pool.log").read_text()


UNUSED = {  # an experiment record, its builder and a constant, none of which the study runs
    "experiments.py": '''

QUIET = 0.5
register(Experiment(
    "quiet", "Quiet", fixed("quiet"), T.quiet_noise, enabled=False, n=2, restarts=1, shared_prompts=as_exp1,
    settings={"scale": {"type": "number", "minimum": 0, "default": QUIET}}, sources=lambda t: [t]))
''',
    "targets.py": '''

def quiet_noise(spec, condition, ids, residuals, stats):
    """A real target plus noise in the pool's lowest-variance half of the dimensions."""
    quiet = np.argsort(stats["dim_std"])[: len(stats["dim_std"]) // 2]
    out = [residuals[t].copy() for t in ids]
    for t, target in zip(ids, out):
        target[:, quiet] += spec["scale"] * stats["dim_std"][quiet] * numpy_rng("quiet", t).standard_normal(
            (target.shape[0], len(quiet)))
    return out
''',
}


@pytest.mark.slow
def test_a_change_reruns_exactly_the_jobs_that_run_the_changed_code(tmp_path):
    """A copy of the workflow runs a small study; then its library changes, and each dry run plans
    the jobs that run the changed code (and what depends on their outputs), nothing else: an
    unused record, builder, constant or function plans nothing; an edited method reruns only the packs that
    use it; an edited function the rules that call it; a record enabled plans its own jobs and the
    summaries across experiments — no pool, cache or other experiment's pack."""
    import shutil

    copy = tmp_path / "workflow"
    copy.mkdir()
    for name in ("Snakefile", "rules", "workflow_scripts", "schemas", "report", "demo", "envs"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, copy / name)
    config = demo_config(**{**AGENDA_ONLY, "optimizer.steps": 40, "optimizer.extend_steps": None,
                            **{f"experiments.{e}.enabled": False for e in
                               ("experiment2a", "experiment2b", "experiment3", "experiment4", "prefix_steering")},
                            "experiments.hard_prompt": {"enabled": True, "n_targets": 2, "restarts": 1},
                            "methods.gcg": {"top_k": 16, "candidates": 8, "steps": 4}})

    def run(*args):
        (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
        command = [sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "--directory",
                   str(tmp_path / "work"), "--configfile", str(tmp_path / "study.yaml"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=900)

    finished = run("--cores", "2")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert planned_jobs(run("--dry-run")) == {}
    library = copy / "workflow_scripts" / "reachability"
    for name, text in UNUSED.items():
        (library / name).write_text((library / name).read_text() + text)
    assert planned_jobs(run("--dry-run")) == {}  # an unused record, builder and constant: nothing to do

    methods = (library / "methods.py").read_text()
    edited = methods.replace("return project_to_tokens(prompt, self.vocabulary, F.normalize(self.vocabulary, dim=-1))",
                             "unit = F.normalize(self.vocabulary, dim=-1)\n        "
                             "return project_to_tokens(prompt, self.vocabulary, unit)")
    assert edited != methods
    (library / "methods.py").write_text(edited)  # PEZ only: the text experiment's pack, not Exp 1's
    jobs = planned_jobs(run("--dry-run"))
    assert jobs["optimise_pack"] == 1 and jobs["aggregate"] == 1 and "build_targets" not in jobs
    assert "results/hard_prompt/runs/hs4/0-4_s40.h5" in planned_outputs(run("--dry-run"), "optimise_pack")
    (library / "methods.py").write_text(methods)

    with open(library / "metrics.py", "a") as f:  # a function nobody calls: nothing to do
        f.write("\n\ndef spread(x):\n    return x.max() - x.min()\n")
    assert planned_jobs(run("--dry-run")) == {}
    metrics = (library / "metrics.py").read_text()  # aggregate calls results, which calls restart_spread
    (library / "metrics.py").write_text(metrics.replace("ok = positive.sum(axis=1) >= 2", "ok = positive.sum(axis=1) > 1"))
    jobs = planned_jobs(run("--dry-run"))
    assert {"aggregate", "conditions_table", "findings", "targets_table"} <= set(jobs)
    assert not {"optimise_pack", "build_targets", "cache_residuals", "extract_pool"} & set(jobs)
    (library / "capture.py").write_text((library / "capture.py").read_text().replace("WARMUP_STEPS = 3", "WARMUP_STEPS = 4"))
    jobs = planned_jobs(run("--dry-run"))
    assert jobs["optimise_pack"] == 2 and "build_targets" not in jobs and "cache_residuals" not in jobs
    assert run("--cores", "2").returncode == 0

    config["experiments"]["quiet"] = {"enabled": True}  # the record, enabled: its own jobs and the summaries
    result = run("--dry-run")
    jobs = planned_jobs(result)
    assert jobs["optimise_pack"] == 1 and jobs["build_targets"] == 1 and jobs["aggregate"] == 1
    assert all("/quiet/" in out for out in planned_outputs(result, "optimise_pack"))
    assert {"conditions_table", "findings", "plot_summary"} <= set(jobs)
    assert not {"cache_residuals", "extract_pool", "build_demo_model"} & set(jobs)


def budget_config(fraction: float) -> dict:
    """A small study whose Exp 1 verdict is forced: plateau_fraction 0 extends whenever any run
    still improves, 1 never extends."""
    return demo_config(**{**AGENDA_ONLY, "optimizer.steps": 40, "optimizer.extend_steps": 60,
                          "metrics.plateau_fraction": fraction, "experiments.experiment1.n_targets": 4,
                          **{f"experiments.{e}.enabled": False for e in ("experiment2a", "experiment3", "experiment4")},
                          "experiments.experiment2b.n_targets": 2, "experiments.experiment2b.restarts": 1})


@pytest.mark.slow
@pytest.mark.parametrize("fraction,steps", [(0.0, 60), (1.0, 40)])
def test_exp_1_decides_the_step_budget_of_every_experiment(tmp_path, fraction, steps):
    config = budget_config(fraction)
    before = snakemake(tmp_path, config, "--dry-run")
    jobs = planned_jobs(before)
    assert jobs["step_budget"] == 1 and "extend_pack" not in jobs and "step budget: pending" in before.stdout + before.stderr
    result = snakemake(tmp_path, config, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    budget = json.loads((tmp_path / "results" / "step_budget.json").read_text())
    assert budget["steps"] == steps and budget["extended"] == (steps == 60)
    for experiment in ("experiment1", "experiment2b"):
        metrics = json.loads((tmp_path / "results" / experiment / "metrics.json").read_text())
        assert metrics["provenance"]["step_budget"] == {"steps": steps, "reason": budget["reason"]}
        runs, _ = read_h5(tmp_path / "results" / experiment / "runs.h5", ["loss"])
        assert runs["loss"].shape[-1] == steps
    extended = list((tmp_path / "results" / "experiment1" / "runs_extended").rglob("*.h5"))
    assert len(extended) == (1 if steps == 60 else 0)
    assert f"Step budget: {steps} steps" in (tmp_path / "results" / "conditions.md").read_text()
    after = snakemake(tmp_path, config, "--dry-run")
    assert planned_jobs(after) == {} and f"step budget: {steps} steps" in after.stdout + after.stderr


def test_hard_prompts_are_compared_target_by_target_with_exp_1(demo):
    report = json.loads((demo / "results" / "hard_prompt" / "hard_prompts.json").read_text())
    exp1 = json.loads((demo / "results" / "experiment1" / "metrics.json").read_text())["conditions"]["real"]
    solutions = json.loads((demo / "results" / "experiment1" / "solutions.json").read_text())
    projected = solutions["conditions"]["real"]["manifold"]["projected_runs"]
    pool = read_h5(demo / "results" / "pool" / "tokens.h5", ["tokens"])[0]["tokens"]
    rows = report["targets"]
    assert [r["target_id"] for r in rows] == [0, 1, 2, 3]
    hard = json.loads((demo / "results" / "hard_prompt" / "metrics.json").read_text())["conditions"]
    assert list(hard) == ["text/norm_ball", "text/mixture", "text/pez", "text/gcg", "text/inversion"]  # per method
    assert all(list(r["methods"]) == ["mixture", "pez", "gcg", "inversion"] for r in rows)  # those with a text
    restarts = min(len(hard["text/pez"]["per_target"]["final_mse"][0]), len(exp1["per_target"]["final_mse"][0]))
    assert report["summary"]["restarts"] == restarts == 1  # the demo: Exp 1 has 2 restarts, the hard prompts 1
    for r in rows:
        t = r["target_id"]
        assert r["soft_mse"] == pytest.approx(min(exp1["per_target"]["final_mse"][t][:restarts]), rel=1e-6)
        assert r["projected_mse"] == pytest.approx(min(
            m for i, k, m in zip(projected["target_id"], projected["restart"], projected["mse"]) if i == t and k < restarts))
        for method, x in r["methods"].items():
            assert x["mse"] >= 0 and x["text"] and len(x["tokens"]) == 20
            if method != "mixture":  # a token mixture's row is the text it reads as, not the mixture
                assert x["mse"] == pytest.approx(hard[f"text/{method}"]["per_target"]["best_final_mse"][t], rel=1e-6,
                                                 abs=1e-12)
            same = np.array(x["tokens"]) == pool[t]  # recovery against the target's own pool sequence
            assert x["position_match"] == pytest.approx(same.mean()) and x["exact"] == bool(same.all())
    summary = report["summary"]
    for method in ("pez", "gcg"):
        assert summary["methods"][method]["exact_match_rate"] == np.mean([r["methods"][method]["exact"] for r in rows])
        # the nearest tokens of a soft prompt are far from its target; the hard-prompt searches do far better
        assert summary["methods"][method]["median_mse"] < summary["projected_median_mse"]
    findings = {r["observation"]: r for r in json.loads((demo / "results" / "findings.json").read_text())["findings"]}
    assert {"text reaches as well as a vector: Text (PEZ) reaches as well as a soft prompt",
            "text reaches as well as a vector: Text (exact inversion) reaches as well as a soft prompt",
            "GCG reaches better than PEZ"} <= set(findings)
    assert summary["methods"]["inversion"]["exact_match_rate"] == 1.0  # the ground truth: every real target's text
    table = (demo / "results" / "hard_prompt" / "hard_prompts.md").read_text()
    assert table.count("\n| ") == 1 + 4 and "exact match in" in table and "GCG (decoded)" in table


def test_a_second_model_runs_in_its_own_folder_and_is_compared(demo):
    theirs = json.loads((demo / "results" / "models" / "tiny-32" / "experiment1" / "metrics.json").read_text())
    ours = json.loads((demo / "results" / "experiment1" / "metrics.json").read_text())
    assert theirs["provenance"]["model"] == "resources/demo-model-32" and ours["provenance"]["model"] == "resources/demo-model"
    assert theirs["provenance"]["n_parameters"] < ours["provenance"]["n_parameters"]
    assert read_attrs(demo / "results" / "models" / "tiny-32" / "pool" / "tokens.h5")["model"] == "resources/demo-model-32"
    assert not (demo / "results" / "models" / "tiny-32" / "experiment2a").exists()  # only compare.experiments
    table = json.loads((demo / "results" / "compare" / "models.json").read_text())
    rows = {(r["model"], r["condition"]): r for r in table["rows"]}
    assert set(rows) == {(m, c) for m in ("demo-model", "tiny-32") for c in ("Exp 1 real", "Exp 2b isotropic")}
    assert rows["demo-model", "Exp 1 real"]["median_best_final_mse"] == pytest.approx(
        ours["conditions"]["real"]["median_best_final_mse"])
    assert rows["tiny-32", "Exp 1 real"]["median_best_final_mse"] == pytest.approx(
        theirs["conditions"]["real"]["median_best_final_mse"])
    for r in rows.values():
        assert r["median_low"] <= r["median_best_final_mse"] <= r["median_high"]


def test_adding_a_model_adds_only_its_jobs(demo):
    """A third model: its own chain of jobs and the comparison; nothing of the other two."""
    models = demo_config()["compare"]["models"] + [
        {"label": "tiny-48", "name": "resources/demo-model-48", "build": {"hidden_size": 48}}]
    jobs = planned_jobs(snakemake(demo, demo_config(**{"compare.models": models}), "--dry-run"))
    assert {"compare_models", "plot_models", "all"} <= set(jobs)
    theirs = {rule for rule in jobs if rule.startswith("model_tiny_48_")}
    assert {"model_tiny_48_build_demo_model", "model_tiny_48_extract_pool", "model_tiny_48_optimise_pack"} <= theirs
    assert set(jobs) == theirs | {"compare_models", "plot_models", "all"}, jobs


@pytest.mark.slow
def test_a_steering_experiment_runs_with_a_supplied_and_a_random_direction(tmp_path):
    """Steering on Exp 1's targets, at its own steps: ε = 0 is Exp 1's target itself; the supplied
    vector is a file of the study (an edit reruns the steering targets and runs, nothing of Exp 1);
    switching to random directions makes them again."""
    from reachability.storage import read_targets

    np.save(tmp_path / "direction.npy", np.linspace(-1.0, 1.0, 64))  # the demo model's width
    steering = {"enabled": True, "n_targets": 2, "restarts": 1, "epsilons": [0, 2.0], "positions": [0, 5],
                "direction": "direction.npy", "steps": 30}  # its own steps: every reader of its files follows
    config = demo_config(**{**AGENDA_ONLY, "optimizer.steps": 40, "optimizer.extend_steps": None,
                            **{f"experiments.{e}.enabled": False for e in
                               ("experiment2a", "experiment2b", "experiment3", "experiment4")},
                            "experiments.experiment1.n_targets": 4, "experiments.steering": steering})
    finished = snakemake(tmp_path, config, "--cores", "2")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert (tmp_path / "results" / "steering" / "steering.png").stat().st_size > 0
    metrics = json.loads((tmp_path / "results" / "steering" / "metrics.json").read_text())["conditions"]
    assert list(metrics) == ["e0", "e2"] and all(s["n_targets"] == 2 for s in metrics.values())
    assert all(len(s["per_target"]["final_mse"]) == 2 for s in metrics.values())
    assert sorted(p.name for p in (tmp_path / "results" / "steering" / "runs" / "hs4").glob("*.h5")) == ["0-4_s30.h5"]
    built = read_targets(sorted(map(str, (tmp_path / "results" / "targets" / "hs4" / "steering").glob("*.h5"))), {})
    real = read_targets(sorted(map(str, (tmp_path / "results" / "targets" / "hs4" / "experiment1").glob("*.h5"))), {})
    for t in range(2):
        np.testing.assert_array_equal(built["e0", t], real["real", t])
        moved = np.flatnonzero(np.abs(built["e2", t] - real["real", t]).max(axis=1) > 0)
        assert moved.tolist() == [0, 5]
    np.save(tmp_path / "direction.npy", np.linspace(1.0, -1.0, 64))  # another steering vector
    jobs = planned_jobs(snakemake(tmp_path, config, "--dry-run"))
    assert jobs["build_targets"] == 1 and jobs["optimise_pack"] == 1 and "cache_residuals" not in jobs
    config["experiments"]["steering"]["direction"] = None  # random directions: made again
    result = snakemake(tmp_path, config, "--dry-run")
    assert planned_outputs(result, "build_targets") == ["results/targets/hs4/steering/0-4.h5"]


def test_the_ladder_sets_every_rung_on_the_same_targets(demo):
    """Exp 1's real targets: its soft prompt beside the text experiment's norm ball, mixture, PEZ,
    GCG and exact inversion, which recovers every target's own text; Exp 2a's random targets: its
    five methods. Every rung counts the same targets and restarts."""
    ladder = json.loads((demo / "results" / "ladder.json").read_text())
    sections = {s["label"]: s for s in ladder["sections"]}
    assert list(sections) == ["Exp 1 real", "Exp 2a matched"]
    exp1, random = sections["Exp 1 real"], sections["Exp 2a matched"]
    assert [r["label"] for r in exp1["rungs"]] == ["soft", "norm ball", "token mixture", "token mixture → text", "PEZ",
                                                   "GCG", "exact inversion"]
    assert [r["label"] for r in random["rungs"]] == ["soft", "norm ball", "token mixture", "token mixture → text", "PEZ",
                                                     "exact inversion"]
    assert (exp1["n_targets"], exp1["restarts"]) == (4, 1) and (random["n_targets"], random["restarts"]) == (8, 2)
    assert exp1["real_text"] and not random["real_text"]
    rungs = {r["label"]: r for r in exp1["rungs"]}
    assert rungs["exact inversion"]["summary"]["exact_share"] == 1.0
    assert rungs["exact inversion"]["summary"]["median_best_mse"] == 0.0
    assert "exact_share" not in rungs["norm ball"]["summary"] and "exact_share" not in rungs["token mixture"]["summary"]
    exp1_metrics = json.loads((demo / "results" / "experiment1" / "metrics.json").read_text())["conditions"]["real"]
    soft = [min(x[:1]) for x in exp1_metrics["per_target"]["final_mse"][:4]]  # the first restart of the first 4
    np.testing.assert_allclose(rungs["soft"]["per_target"]["best_mse"], soft, rtol=1e-6)
    table = (demo / "results" / "ladder.md").read_text()
    assert table.count("| exact inversion | yes |") == 2 and (demo / "results" / "ladder.png").stat().st_size > 0


@pytest.mark.slow
def test_a_swept_experiment_with_several_methods_has_a_line_per_method(tmp_path):
    """The layer sweep of an experiment that runs the soft prompt and the norm ball: each method
    its own line, at every site."""
    config = demo_config(**{**AGENDA_ONLY, "optimizer.steps": 20, "optimizer.extend_steps": None,
                            **{f"experiments.{e}.enabled": False for e in
                               ("experiment2a", "experiment2b", "experiment3", "experiment4")},
                            "experiments.experiment1": {"enabled": True, "n_targets": 2, "restarts": 1,
                                                        "methods": ["soft", "norm_ball"]},
                            "layer_sweep": {"enabled": True, "sites": [{"kind": "hidden_states", "layer": 2},
                                                                       {"kind": "hidden_states", "layer": 4}],
                                            "experiments": ["experiment1"], "n_targets": 2, "restarts": 1}})
    result = snakemake(tmp_path, config, "--cores", "2", "results/layer_sweep.json")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = json.loads((tmp_path / "results" / "layer_sweep.json").read_text())["results"]
    assert {k: list(v) for k, v in sweep.items()} == {"experiment1": ["hs2", "hs4"], "experiment1/norm_ball": ["hs2", "hs4"]}
    assert sweep["experiment1"]["hs2"]["median_best_final_mse"] != sweep["experiment1/norm_ball"]["hs2"]["median_best_final_mse"]
