"""Bad configs stop the real Snakefile at parse time, naming the key and the fix."""

import re

import pytest
import yaml

from reachability import experiments
from reachability.study import conditions, n_targets
from reachability.validation import ConfigError, check_config
from workflow_helpers import AGENDA_ONLY, DELETE, ROOT, demo_config, planned_jobs, planned_outputs, snakemake, study_packs, validated


BAD = [
    ({"colour": "red"}, r"colour"),
    ({"seq_len": "20"}, r"seq_len"),
    ({"optimizer.steps": 0}, r"steps"),
    ({"optimizer.lr": -0.01}, r"lr"),
    ({"experiments.experiment1.steps": 500}, r"experiments.experiment1.steps = 500: Exp 1 decides the step budget"),
    ({"experiments.experiment2a.steps": 0}, r"steps"),
    ({"experiments.experiment1.restarts": 0}, r"restarts"),
    ({"experiments.experiment2a.n_targets": 500}, r"experiment2a.n_targets = 500 is above pool_size = 400"),
    ({"site.layer": 5}, r"site.layer 5 is out of range .* choose 0..4"),
    ({"site.kind": "resid_mid"}, r"kind"),
    ({"site": {"kind": "block_output", "layer": 0}}, r"site.layer 0 is out of range for block_output"),
    ({"experiments.experiment3.alphas": []}, r"alphas"),
    ({"experiments.experiment4.fractions": [0, 1.5]}, r"fractions"),
    ({"experiments.experiment3.alphas": [0.5, 0.5]}, r"alphas"),
    ({"seq_len": 100}, r"seq_len = 100 is above the model's context of 64 tokens"),
    ({"engine.runs_per_job": 0}, r"runs_per_job"),
    ({"engine.precision": "fp16"}, r"precision"),
    ({"experiments.experiment3.n_pairs": 5}, r"n_pairs = 5 needs 10 of Exp 1's targets"),
    ({"experiments.experiment4.n_targets": 9}, r"experiment4.n_targets = 9 must not exceed"),
    ({"model.build.corpus": DELETE}, r"corpus"),
    ({"model.name": "../outside"}, r"model.name = '../outside' is where model.build writes .* under results/ or resources/"),
    ({"model.name": "/tmp/elsewhere"}, r"must be a folder under results/ or resources/ of the working directory"),
    ({"model.name": "docs"}, r"model.name = 'docs' is where model.build writes the demo model"),
    ({"findings.seed": -5}, r"seed"),
    ({"optimizer.lr": 1e30}, r"optimizer.lr = 1e\+30 is above 100: Adam moves"),
    ({"methods.gcg.top_k": 5000}, r"methods.gcg.top_k = 5000 is above the model's vocabulary of 1024 tokens"),
    ({"optimizer.steps": 10**7, "optimizer.extend_steps": None}, r"study size: .* above max_run_steps = 1e\+09 .* --config max_run_steps="),
    ({"experiments.experiment3.alphas": [i / 100 for i in range(2000)], "max_run_steps": 1e6},
     r"at most [\d,]+ run-steps .* above max_run_steps = 1e\+06"),
    ({"pool_size": 10**9}, r"above max_cache_gib = 64: check pool_size, or raise it with --config max_cache_gib="),
    ({"engine.device": "gpu0"}, r"device"),
    ({"perturbation.epsilons": []}, r"epsilons"),
    ({"perturbation.token_index": 20}, r"perturbation.token_index = 20 is outside the sequence"),
    ({"perturbation.sites": [{"kind": "block_output", "layer": 9}]}, r"perturbation.sites: site.layer 9 is out of range"),
    ({"layer_sweep.sites": [{"kind": "hidden_states", "layer": 7}]}, r"layer_sweep.sites: site.layer 7 is out of range"),
    ({"experiments.ablation.components": []}, r"components"),
    ({"experiments.ablation.n_targets": 9}, r"ablation.n_targets = 9 must not exceed"),
    ({"dataset.data_files": "demo/no-such-corpus.txt"}, r"dataset.data_files: \['demo/no-such-corpus.txt'\] matches no file"),
    ({"dataset.split": "validation"}, r"dataset.split = 'validation', but data files .* set dataset.split: train"),
    ({"site": "blocks.0.hook_resid_mid"}, r"site: 'blocks.0.hook_resid_mid' is not a site name this tool knows"),
    ({"perturbation.sites": ["blocks.9.hook_resid_post"]}, r"perturbation.sites: site.layer 10 is out of range"),
    ({"pool_size": 64}, r"pool_size = 64 is too small for Exp 2a: .* at least 65"),
    ({"layer_sweep.restarts": 3}, r"layer_sweep reads experiments.experiment1's runs .*layer_sweep.restarts = 3"),
    ({"experiments.hard_prompt.n_targets": 9}, r"hard_prompt.n_targets = 9 needs as many of Exp 1's targets"),
    ({"compare.models": [{"label": "demo-model", "name": "resources/other"}]}, r"labels \['demo-model', 'demo-model'\] must be distinct"),
    ({"compare.axis": "step"}, r"compare.axis: step needs each model's training step; \['demo-model', 'tiny-32'\]"),
    ({"compare.models": [{"label": "wide", "build": {"hidden_size": 48}}]}, r"each built model needs its own name"),
    ({"compare.models": [{"label": "a/b"}]}, r"label"),
    ({"compare.experiments": ["hard_prompt"]}, r"compare.experiments = \['hard_prompt'\]: .* add experiment1"),
    ({"compare.models": [{"label": "x", "name": "resources/x", "build": {"hidden_size": 0}}]}, r"hidden_size"),
    ({"optimizer.lr": float("inf")}, r"optimizer.lr: must be a finite number \(not .nan or .inf\)"),
    ({"optimizer.lr": float("nan")}, r"optimizer.lr: must be a finite number"),
    ({"findings.much_ratio": float("inf")}, r"findings.much_ratio: must be a finite number"),
    ({"compare.models": [{"label": "tiny-32", "name": "resources/demo-model-32", "build": {"hidden_size": 32},
                          "site": {"kind": "hidden_states", "layer": 7}}]},
     r"compare.models\[0\] \(label tiny-32\): site: site.layer 7 is out of range .* choose 0..4"),
]


@pytest.mark.parametrize("changes,message", BAD, ids=[next(iter(c)) + f"-{i}" for i, (c, _) in enumerate(BAD)])
def test_a_bad_config_stops_the_dry_run_and_names_the_key(tmp_path, changes, message):
    result = snakemake(tmp_path, demo_config(**changes), "--dry-run")
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr), result.stderr[-2000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_the_demo_config_dry_runs_without_network_or_weights(tmp_path):
    result = snakemake(tmp_path, demo_config(**{"optimizer.extend_steps": None}), "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    # Exp 1, 2a (five methods), 2b, 3, 4, the ablation, the text experiment, prefix steering, Exp 4p (its own
    # steps); the sweep's other sites
    assert planned_jobs(result)["optimise_pack"] == study_packs(demo_config()) == 1 + 5 + 1 + 2 + 2 + 1 + 1 + 1 + 1 + 4


def test_an_experiment_with_its_own_steps_runs_them_and_the_others_the_budget(tmp_path):
    """The research log's per-experiment counts: Exp 2a and 2b set their own steps (the demo's Exp 4p
    its 200); Exp 1 and the rest run the study's; each reader then expects the packs at their own steps."""
    from reachability import records

    config = demo_config(**{"optimizer.extend_steps": None, "experiments.experiment2a.steps": 40,
                            "experiments.experiment2b.steps": 60})
    result = snakemake(tmp_path, config, "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    steps = {out.split("/")[1]: out.rsplit("_s", 1)[1] for out in planned_outputs(result, "optimise_pack")}
    assert steps == {"experiment1": "300.h5", "experiment2a": "40.h5", "experiment2b": "60.h5", "experiment3": "300.h5",
                     "experiment4": "300.h5", "ablation": "300.h5", "hard_prompt": "300.h5", "prefix_steering": "300.h5",
                     "experiment4p": "200.h5"}
    config = validated(config)
    assert records.expected(config, "results/experiment2b/metrics.json", 300)["steps"] == 60
    assert records.expected(config, "results/experiment1/metrics.json", 300)["steps"] == 300


def test_config_yaml_is_the_agenda_and_equals_the_schema_defaults():
    given = yaml.safe_load((ROOT / "config.yaml").read_text())
    defaults: dict = {}
    validated(defaults)
    filled = yaml.safe_load((ROOT / "config.yaml").read_text())
    validated(filled)
    assert filled == defaults  # nothing in config.yaml departs from the schema's defaults
    assert given["model"]["name"] == "EleutherAI/pythia-160m" and given["site"] == {"kind": "hidden_states", "layer": 12}
    assert given["optimizer"] == {"lr": 0.01, "steps": 2000, "extend_steps": 5000, "loss": {"kind": "mse"}} and given["seq_len"] == 20
    assert (given["dataset"]["path"], given["dataset"]["name"], given["dataset"]["split"]) == ("Salesforce/wikitext", "wikitext-2-raw-v1", "train")
    assert conditions(filled, "experiment3") == ["a-0.5", "a0", "a0.25", "a0.5", "a0.75", "a1", "a1.5", "a2"]
    assert conditions(filled, "experiment4")[:3] == ["f0", "f0.1", "f0.2"] and len(conditions(filled, "experiment4")) == 11
    assert [n_targets(filled, e) for e in ("experiment1", "experiment2a", "experiment2b", "experiment3", "experiment4")] == [100, 100, 100, 20, 50]
    assert conditions(filled, "ablation") == ["no_ffn", "no_attention"]
    assert [filled["experiments"][e]["restarts"] for e in ("experiment1", "experiment3", "experiment4")] == [5, 5, 3]


def test_check_config_alone_without_a_model():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validated(config)
    check_config(config, experiments)
    config["pool_size"] = 50
    with pytest.raises(ConfigError, match="pool_size"):
        check_config(config, experiments)


def test_without_the_hub_the_default_study_stops_before_any_job(tmp_path):
    """No network, no local model or dataset: the console says so at once (a dry run still plans)."""
    import os
    import subprocess

    from workflow_helpers import snakemake_command

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}
    result = subprocess.run(snakemake_command(tmp_path, config, "--cores", "1"), capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "hub is not reachable" in text and "set model.name to a local directory" in text
    assert "dataset.path = 'Salesforce/wikitext'" in text and "dataset.data_files" in text
    assert not (tmp_path / "results").exists()
    assert subprocess.run(snakemake_command(tmp_path, config, "--dry-run"), capture_output=True,
                          env=env).returncode == 0


def test_editing_the_local_corpus_makes_the_pool_stale(tmp_path):
    import shutil

    shutil.copy(ROOT / "demo" / "corpus.txt", tmp_path / "data.txt")
    config = demo_config(**{"dataset.data_files": "data.txt"})
    assert snakemake(tmp_path, config, "--cores", "1", "results/pool/tokens.h5").returncode == 0
    assert planned_jobs(snakemake(tmp_path, config, "--dry-run", "results/pool/tokens.h5")) == {}
    with open(tmp_path / "data.txt", "a") as f:
        f.write("one more line of text for the corpus, long enough to count\n")
    assert planned_jobs(snakemake(tmp_path, config, "--dry-run", "results/pool/tokens.h5")) == {"extract_pool": 1}


def test_transformer_lens_names_and_last_plan_the_same_sites(tmp_path):
    named = demo_config(**{"site": "ln_final.hook_normalized", "optimizer.extend_steps": None,
                           "layer_sweep.sites": ["blocks.0.hook_resid_post", {"kind": "hidden_states", "layer": "last"}]})
    result = snakemake(tmp_path, named, "--dry-run")
    assert result.returncode == 0, result.stdout[-2000:]
    text = result.stdout
    assert "results/experiment1/runs/hs4/" in text and "results/experiment1/runs/block1/" in text
    assert "results/experiment1/runs/hs1/" not in text


def test_last_is_each_compared_models_own_last_layer(tmp_path):
    shallow = {"label": "two-blocks", "name": "resources/demo-model-2", "build": {"num_layers": 2},
               "site": {"kind": "hidden_states", "layer": "last"}}
    config = demo_config(**{**AGENDA_ONLY, "optimizer.extend_steps": None, "compare.models": [shallow]})
    result = snakemake(tmp_path, config, "--dry-run")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert planned_outputs(result, "cache_residuals") == ["results/cache/hs4/pool_residuals.h5"]
    assert planned_outputs(result, "model_two_blocks_cache_residuals") == ["results/models/two-blocks/cache/hs2/pool_residuals.h5"]


def test_last_without_the_models_config_says_what_to_do():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["site"]["layer"] = "last"
    from reachability.validation import resolve_last_layers

    with pytest.raises(ConfigError, match="site.layer: last needs the model's config.json"):
        resolve_last_layers(config, None)
    resolve_last_layers(config, 12)
    assert config["site"]["layer"] == 12


def test_condition_names_are_exact_so_close_values_never_collide():
    from reachability.experiments import exact_name

    config = {"experiments": {"experiment3": {"alphas": [0.1, 0.1000001, 2, -0.5, 1 / 3]},
                              "experiment4": {"fractions": [0.3, 0.30000000000000004]}}}
    alphas = conditions(config, "experiment3")
    assert alphas == ["a0.1", "a0.1000001", "a2", "a-0.5", "a0.3333333333333333"]
    assert len(set(conditions(config, "experiment4"))) == 2
    for value in (0.1, 1e-7, 123456.7, 0.30000000000000004, -2.5):
        assert float(exact_name(value)) == value


def test_a_pool_under_the_agendas_thousand_is_a_warning_for_exp_2a():
    from reachability.study import pool_warnings

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert pool_warnings(config, "experiment2a") == []
    config["pool_size"] = 999
    assert "at least 1000" in pool_warnings(config, "experiment2a")[0] and pool_warnings(config, "experiment1") == []


def test_the_dry_run_says_the_studys_size_and_a_raised_bound_lets_it_through(tmp_path):
    big = demo_config(**{"optimizer.steps": 10**7, "optimizer.extend_steps": None, "max_run_steps": 1e12})
    result = snakemake(tmp_path, big, "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"study size: [\d,]+ runs, at most [\d,]+ run-steps", result.stdout + result.stderr)


def test_a_built_model_never_replaces_a_folder_the_workflow_did_not_build(tmp_path):
    """model.build writes (and Snakemake first deletes) model.name: an existing folder that is not
    a model this workflow built stops the run before any job, and is left as it was."""
    mine = tmp_path / "resources" / "my-model"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    result = snakemake(tmp_path, demo_config(**{"model.name": "resources/my-model"}), "--cores", "1")
    assert result.returncode != 0
    assert "model.name = 'resources/my-model' exists and is not a model this workflow built" in result.stderr
    assert (mine / "notes.txt").read_text() == "mine" and not (tmp_path / "results").exists()


@pytest.mark.parametrize("content,message", [
    (b"", r"is empty"),
    (b"   \n\n", r"is empty"),
    ("caf\u00e9 au lait, a sentence long enough to read\n".encode("latin-1"), r"is not UTF-8 \(byte 0xe9 at offset 3"),
    ("a sentence long enough to read\n".encode("utf-16"), r"is not UTF-8 text \(it holds NUL bytes: UTF-16"),
    (bytes(range(256)) * 4, r"is not UTF-8 text \(it holds NUL bytes"),
])
def test_a_corpus_that_is_not_utf8_text_is_named_before_any_job(tmp_path, content, message):
    from reachability.probes import check_dataset

    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    config = demo_config(**{"dataset.data_files": str(corpus)})
    with pytest.raises(ConfigError, match=rf"dataset.data_files: {corpus} {message}"):
        check_dataset(config)


def test_a_built_model_folder_is_checked_without_a_dry_run(tmp_path, monkeypatch):
    from reachability.validation import BUILT, check_built_model_folder

    monkeypatch.chdir(tmp_path)
    for bad in ("docs", "results", "resources/../docs", "/abs/model", "src/model"):
        with pytest.raises(ConfigError, match="under results/ or resources/"):
            check_built_model_folder(bad)
    check_built_model_folder("resources/new-model")  # absent: built there
    (tmp_path / "resources" / "old").mkdir(parents=True)
    with pytest.raises(ConfigError, match="exists and is not a model this workflow built"):
        check_built_model_folder("resources/old")
    (tmp_path / "resources" / "old" / BUILT).write_text("{}")
    check_built_model_folder("resources/old")  # built before: replaced when its spec changes


def test_a_steering_vector_is_checked_before_any_job(tmp_path):
    """The supplied direction is read at the start, against the model's width: a missing file, a
    wrong width, zeros, a foreign format or an empty path each stop the dry run naming the key."""
    import numpy as np

    tmp_path.mkdir(exist_ok=True)
    np.save(tmp_path / "good.npy", np.ones(64))  # the demo model's width
    np.save(tmp_path / "narrow.npy", np.ones(32))
    np.save(tmp_path / "zero.npy", np.zeros(64))
    np.savez(tmp_path / "bundle.npz", v=np.ones(64))
    cases = {"good.npy": None, "missing.npy": r"experiments.steering.direction = missing.npy is not a file",
             "narrow.npy": r"holds 32 values, the site has d_model = 64",
             "zero.npy": r"only zeros", "bundle.npz": r"a .npy file \(numpy.save\) or a .pt file",
             "": r"direction"}
    for direction, message in cases.items():
        steering = {"enabled": True, "n_targets": 2, "restarts": 1, "direction": direction}
        result = snakemake(tmp_path, demo_config(**{**AGENDA_ONLY, "optimizer.extend_steps": None,
                                                    "experiments.steering": steering}), "--dry-run")
        text = result.stdout + result.stderr
        if message is None:
            assert result.returncode == 0, text[-2000:]
        else:
            assert result.returncode != 0 and re.search(message, text), (direction, text[-2000:])
