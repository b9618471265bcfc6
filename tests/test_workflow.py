"""The offline demo DAG end to end with real Snakemake, then what a rerun would redo."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from reachability.sites import Site
from reachability.storage import read_attrs
from workflow_helpers import ROOT, demo_config, planned_jobs, planned_outputs, snakemake

EXPERIMENTS = ("experiment1", "experiment2a", "experiment2b", "experiment3", "experiment4", "ablation")
BEYOND = ("ablation.png", "layer_sweep.png", "embedding_manifold.png", "functional_reachability.png",
          "perturbation/kl_vs_epsilon.png", "perturbation/placement.png")
FIGURES = ("loss_curves.png", "final_mse_histogram.png", "cosine_by_position.png")


def test_every_output_exists_and_every_png_decodes(demo):
    pngs = [demo / "results" / e / f for e in EXPERIMENTS for f in FIGURES]
    pngs += [demo / "results" / "summary.png", demo / "results" / "experiment4_transition.png"]
    pngs += [demo / "results" / name for name in BEYOND]
    for png in pngs:
        image = imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0.01, png
    table = (demo / "results" / "comparison.md").read_text()
    assert table.count("\n") == 2 + 3 + 8 + 11 + 2 and "Exp 3 α=-0.5" in table and "Exp 4 f=1 " in table


def test_metrics_have_their_fields_and_provenance(demo):
    for experiment in EXPERIMENTS:
        metrics = json.loads((demo / "results" / experiment / "metrics.json").read_text())
        prov = metrics["provenance"]
        assert prov["model"] == "resources/demo-model" and prov["site"] == "hidden_states[4]" and prov["layer"] == 4
        assert len(prov["config_hash"]) == 16 and prov["versions"]["torch"] and prov["devices"][0].startswith("cpu")
        assert prov["optimisation_wall_s"] > 0
        for summary in metrics["conditions"].values():
            per_target = summary["per_target"]
            n = summary["n_targets"]
            assert len(per_target["best_final_mse"]) == n == len(per_target["restart_variance"])
            assert np.array(per_target["final_mse"]).shape == (n, summary["n_restarts"])
            assert np.array(per_target["cosine_by_position"]).shape == (n, 20)
            assert len(summary["cosine_by_position"]["mean"]) == 20
            assert 0 <= summary["reached_fraction"] <= 1 and "needs_more_steps" in summary["plateau"]
            assert summary["n_diverged"] == 0


def test_real_targets_are_easier_than_isotropic_random_ones(demo):
    def median(e, c):
        return json.loads((demo / "results" / e / "metrics.json").read_text())["conditions"][c]["median_best_final_mse"]

    assert median("experiment1", "real") < 0.1 * median("experiment2b", "isotropic")
    assert median("experiment1", "real") < median("experiment2a", "matched")


def test_exp3_endpoints_equal_exp1_targets(demo):
    """α = 1 of pair p is real target 2p: the same target tensor, built by two routes."""
    from reachability.storage import read_h5

    site = "hs4"
    a1, _ = read_h5(demo / "results" / "targets" / site / "experiment3" / "a1" / "t0-4.h5")
    ablation, _ = read_h5(demo / "results" / "targets" / site / "ablation" / "no_ffn" / "t0-8.h5")
    real, _ = read_h5(demo / "results" / "targets" / site / "experiment1" / "real" / "t0-8.h5")
    np.testing.assert_allclose(a1["target"], real["target"][0::2], rtol=1e-6)
    np.testing.assert_array_equal(ablation["target"], real["target"])


def test_every_hdf5_file_records_what_made_it(demo):
    sites = {"hidden_states[1]", "hidden_states[2]", "hidden_states[3]", "hidden_states[4]", "block_output[4]"}
    for path in (demo / "results").rglob("*.h5"):
        attrs = read_attrs(path)
        assert attrs["model"] == "resources/demo-model" and attrs["seq_len"] == 20, path
        assert attrs["site"] in sites if "pool" not in path.parts else "site" not in attrs, path
        if "runs" in path.parts and path.parent.name != "runs":
            assert attrs["site"] == str(Site.from_tag(path.parts[-3])), path


def test_beyond_the_agenda_tables(demo):
    results = demo / "results"
    ablation = (results / "ablation.md").read_text()
    assert "| no ffn |" in ablation and "| no attention |" in ablation and "| full model |" in ablation
    sweep = json.loads((results / "layer_sweep.json").read_text())
    assert set(sweep) == {"experiment1", "experiment2b"} and set(sweep["experiment1"]) == {"hs1", "hs2", "hs3", "hs4", "block4"}
    solutions = json.loads((results / "experiment1" / "solutions.json").read_text())["conditions"]["real"]
    manifold, functional = solutions["manifold"], solutions["functional"]
    assert 0 < manifold["nearest_token_cosine_median"] < 1 and len(manifold["decoded_examples"]) == 3
    assert manifold["hard_median_mse"] > manifold["soft_median_mse"]  # text reaches less than a free vector
    assert len(functional["kl_by_position_median"]) == 20 and len(functional["per_target_mean_kl"]) == 8
    assert functional["median_kl"] >= 0
    curves = json.loads((results / "perturbation" / "kl_vs_epsilon.json").read_text())
    assert set(curves["curves"]) == {"block1", "block2", "block4", "hs4"}  # the study's site is added
    for by_kind in curves["curves"].values():
        assert by_kind["isotropic"][0] == 0 and by_kind["isotropic"][-1] > by_kind["isotropic"][1]
    assert (results / "perturbation" / "placement.md").read_text().count("| experiment") == 3 + 8 + 11


def test_the_html_report_holds_every_figure(demo):
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(demo),
                             "--configfile", str(demo / "study.yaml"), "--report", str(demo / "report.html")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (demo / "report.html").read_text(errors="replace")
    for name in (*FIGURES, "summary.png", "experiment4_transition.png", *(b.split("/")[-1] for b in BEYOND)):
        assert name in html, name
    assert "Beyond the agenda" in html and "experiment3" in html and "Summary" in html


def test_the_agenda_dry_run_lists_every_output_it_names(tmp_path):
    """The default config, with no network and no weights: all 88 shards and every figure."""
    from workflow_helpers import ROOT

    result = snakemake(tmp_path, yaml.safe_load((ROOT / "config.yaml").read_text()), "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    # agenda 88, ablation 2 x 3, sweep 5 more sites x 2 experiments x 2 restarts (hs12 is reused)
    assert planned_jobs(result)["optimise_shard"] == 5 + 5 + 5 + 8 * 5 + 11 * 3 + 6 + 20
    text = result.stdout
    for name in [f"results/{e}/{f}" for e in EXPERIMENTS for f in (*FIGURES, "metrics.json")] + [
            "results/summary.png", "results/experiment4_transition.png", "results/comparison.md"] + [
            f"results/{b}" for b in BEYOND]:
        assert name in text, name


def test_a_dry_run_after_the_demo_has_nothing_to_do(demo):
    assert planned_jobs(snakemake(demo, demo_config(), "--dry-run")) == {}


def test_reordering_config_keys_is_not_a_reason_to_rerun(demo):
    def reversed_keys(value):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))} if isinstance(value, dict) else value

    assert planned_jobs(snakemake(demo, reversed_keys(demo_config()), "--dry-run")) == {}


def test_batch_size_is_not_a_reason_to_rerun(demo):
    assert planned_jobs(snakemake(demo, demo_config(**{"engine.batch_size": 3}), "--dry-run")) == {}


def test_a_plot_option_reruns_only_plots(demo):
    jobs = planned_jobs(snakemake(demo, demo_config(**{"plots.dpi": 90}), "--dry-run"))
    assert set(jobs) <= {"plot_experiment", "plot_summary", "plot_transition", "ablation_table", "layer_sweep",
                         "analysis_summary", "perturb_residuals", "place_errors", "all"}
    assert jobs["plot_experiment"] == 6 and "optimise_shard" not in jobs and "aggregate" not in jobs


def test_more_targets_add_only_the_new_runs(demo):
    result = snakemake(demo, demo_config(**{"experiments.experiment1.n_targets": 16}), "--dry-run")
    jobs = planned_jobs(result)
    assert jobs["optimise_shard"] == 2 and jobs["build_targets"] == 1
    assert sorted(planned_outputs(result, "optimise_shard")) == [
        "results/experiment1/runs/hs4/real/r0_t8-16.h5", "results/experiment1/runs/hs4/real/r1_t8-16.h5"]
    assert "extract_pool" not in jobs and "cache_residuals" not in jobs and jobs["aggregate"] == 1


def test_more_restarts_add_only_the_new_restart(demo):
    result = snakemake(demo, demo_config(**{"experiments.experiment4.restarts": 2}), "--dry-run")
    outputs = planned_outputs(result, "optimise_shard")
    assert len(outputs) == 11 and all("/r1_" in o for o in outputs)
    assert "build_targets" not in planned_jobs(result)


@pytest.mark.parametrize("key,value", [("optimizer.steps", 301), ("optimizer.lr", 0.02), ("engine.precision", "bf16")])
def test_optimiser_changes_rerun_every_optimisation(demo, key, value):
    jobs = planned_jobs(snakemake(demo, demo_config(**{key: value}), "--dry-run"))
    assert jobs["optimise_shard"] == 35 and "build_targets" not in jobs and "extract_pool" not in jobs
