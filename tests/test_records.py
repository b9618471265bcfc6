"""What a study's files record and what their readers expect: every field, from the file's place."""

import json

import numpy as np
import pytest

from reachability import records
from reachability.storage import (
    ProvenanceMismatch, UnreadableFile, read_attrs, read_h5, read_json, write_h5, write_json, writing,
)
from workflow_helpers import ROOT, demo_config, validated


@pytest.fixture
def config():
    return validated(demo_config())


def pack(path, record):
    write_h5(path, {"final_mse": np.ones(4)}, {**record, "device": "cpu", "optimising_s": 1.0})


def test_a_reader_expects_every_field_that_decides_a_files_contents(config):
    expected = records.expected(config, "results/experiment3/runs/hs4/16-32_s300.h5")
    assert expected == {"model": "resources/demo-model", "revision": None, "seq_len": 20, "pool_size": 400,
                        "dataset": expected["dataset"], "site": "hidden_states[4]", "experiment": "experiment3",
                        "conditions": ["a-0.5", "a0", "a0.25", "a0.5", "a0.75", "a1", "a1.5", "a2"], "restarts": 1,
                        "pack": "16-32", "settings": {"alphas": [-0.5, 0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]}, "steps": 300, "lr": 0.05,
                        "loss": {"kind": "mse"}, "precision": "fp32",
                        "methods": {c: {"method": "soft"} for c in expected["conditions"]}}
    hard = records.expected(config, "results/hard_prompt/runs/hs4/0-8_s300.h5")["methods"]
    assert hard == {"text/norm_ball": {"method": "norm_ball", **config["methods"]["norm_ball"]},
                    "text/pez": {"method": "pez"}, "text/gcg": {"method": "gcg", **config["methods"]["gcg"]},
                    "text/mixture": {"method": "mixture", **config["methods"]["mixture"]},
                    "text/inversion": {"method": "inversion", "top_k": None, "steps": config["seq_len"]}}
    extended = records.expected(config, "results/experiment1/runs_extended/hs4/0-16_s360.h5")
    assert extended["steps"] == 360 and extended["continued_from_steps"] == 300
    theirs = records.expected(config, "results/models/tiny-32/experiment1/runs/hs4/0-16_s300.h5")
    assert theirs["pack"] == "0-16" and theirs["experiment"] == "experiment1"  # a compared model's prefix
    with pytest.raises(ValueError, match="not a path of a study file"):
        records.expected(config, "results/elsewhere.h5")


def test_a_300_step_pack_at_the_360_step_path_is_refused_naming_the_field(config, tmp_path):
    path = tmp_path / "results" / "experiment1" / "runs_extended" / "hs4" / "0-16_s360.h5"
    path.parent.mkdir(parents=True)
    pack(path, records.pack_record(config, "experiment1", "hs4", "0-16", 300))
    with pytest.raises(ProvenanceMismatch) as error:
        read_h5(path, expect=records.expected(config, str(path)))
    message = str(error.value)
    assert str(path) in message and "steps is 300 in the file, this step expects 360" in message
    assert "continued_from_steps is '<not recorded>'" in message and "Delete it" in message


def test_a_pack_of_another_experiment_and_lr_is_refused(config, tmp_path):
    path = tmp_path / "results" / "experiment1" / "runs" / "hs4" / "0-16_s300.h5"
    path.parent.mkdir(parents=True)
    other = {**config, "optimizer": {**config["optimizer"], "lr": 0.5}}
    pack(path, records.pack_record(other, "experiment2b", "hs4", "0-16", 300))
    with pytest.raises(ProvenanceMismatch) as error:
        read_h5(path, expect=records.expected(config, str(path)))
    assert "experiment is 'experiment2b' in the file, this step expects 'experiment1'" in str(error.value)
    assert "lr is 0.5 in the file, this step expects 0.05" in str(error.value)
    log = {**config, "optimizer": {**config["optimizer"], "loss": {"kind": "cosine_mse", "mse_weight": 0.01}}}
    pack(path, records.pack_record(log, "experiment1", "hs4", "0-16", 300))  # the research log's objective
    with pytest.raises(ProvenanceMismatch, match="loss is {'kind': 'cosine_mse', 'mse_weight': 0.01} in the file, "
                                                 "this step expects {'kind': 'mse'}"):
        read_h5(path, expect=records.expected(config, str(path)))


def test_a_truncated_or_broken_file_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "pack.h5"
    write_h5(path, {"x": np.arange(100000)}, {"a": 1})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a crashed copy
    for read in (read_h5, read_attrs):
        with pytest.raises(UnreadableFile, match=rf"{path} cannot be read .* truncated .* Delete it"):
            read(path)
    broken = tmp_path / "metrics.json"
    write_json(broken, {"experiment": "experiment1", "conditions": {}}, {"model": "m"})
    broken.write_text(broken.read_text()[:20])  # a crashed copy
    with pytest.raises(UnreadableFile, match=rf"{broken} cannot be read .* not JSON\. Delete it"):
        read_json(broken)


def test_every_output_lands_whole_or_not_at_all(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    with pytest.raises(TypeError):
        write_json(path, {"value": object()}, {})  # fails while writing
    with pytest.raises(RuntimeError), writing(tmp_path / "out" / "table.md") as f:
        f.write("| half a table")
        raise RuntimeError("killed")
    assert list((tmp_path / "out").iterdir()) == []  # no partial file, no temporary left behind
    write_json(path, {"value": np.float32(0.5), "missing": float("nan")}, {"model": "m"})
    written = json.loads(path.read_text())
    assert {k: written[k] for k in ("record", "value", "missing")} == {"record": {"model": "m"}, "value": 0.5,
                                                                        "missing": None}


def test_no_rule_script_writes_an_output_in_place():
    """Every output goes through storage's atomic helpers (write_h5, write_json, writing, the
    figures' _save): a second Snakemake must never see a half-written file at a final path."""
    scripts = sorted((ROOT / "workflow_scripts").glob("*.py"))
    assert scripts and not [s.name for s in scripts if "open(snakemake.output" in s.read_text()]
    assert "atomic(path)" in (ROOT / "workflow_scripts" / "reachability" / "plots.py").read_text()


# JSON and CSV files carry their record, and every reader checks it (issue: no wrong number, part two)

def metrics_file(path, config, experiment, steps=360):
    write_json(path, {"experiment": experiment, "conditions": {}}, records.metrics_record(config, experiment, steps))


def test_another_models_metrics_at_this_studys_path_is_refused_naming_the_field(config, tmp_path):
    from reachability.comparison import model_study

    path = tmp_path / "results" / "experiment1" / "metrics.json"
    theirs = model_study(config, config["compare"]["models"][0])  # the compared tiny-32
    metrics_file(path, theirs, "experiment1")
    with pytest.raises(ProvenanceMismatch) as error:
        records.load(config, str(path), 360)
    message = str(error.value)
    assert str(path) in message and "model is 'resources/demo-model-32' in the file, this step expects " \
                                     "'resources/demo-model'" in message and "Delete it" in message
    metrics_file(path, config, "experiment1")
    assert records.load(config, str(path), 360)["experiment"] == "experiment1"
    with pytest.raises(ProvenanceMismatch, match="steps is 360 in the file, this step expects 300"):
        records.load(config, str(path), 300)  # made at another step budget


def test_exp_2a_metrics_at_exp_2b_path_is_refused(config, tmp_path):
    path = tmp_path / "results" / "experiment2b" / "metrics.json"
    metrics_file(path, config, "experiment2a")
    with pytest.raises(ProvenanceMismatch, match="experiment is 'experiment2a' in the file, this step expects "
                                                 "'experiment2b'"):
        records.load(config, str(path), 360)


def test_an_edited_or_unsealed_json_file_is_refused(config, tmp_path):
    path = tmp_path / "results" / "experiment1" / "metrics.json"
    metrics_file(path, config, "experiment1")
    text = path.read_text()
    path.write_text(text.replace('"conditions": {}', '"conditions": {"real": 1}'))
    with pytest.raises(UnreadableFile, match=rf"{path} does not match its checksum"):
        records.load(config, str(path), 360)
    path.write_text(json.dumps({"experiment": "experiment1", "conditions": {}}))  # an older version's file
    with pytest.raises(UnreadableFile, match="has no checksum"):
        records.load(config, str(path), 360)


def test_the_sweeps_targets_csv_at_the_studys_path_is_refused(config, tmp_path):
    from reachability.storage import read_csv, sidecar, write_csv

    ours, theirs = tmp_path / "results" / "targets.csv", tmp_path / "results" / "layer_sweep" / "targets.csv"
    write_csv(ours, "site,best_mse\nhs4,0.1\n", records.expected(config, "results/targets.csv", 360))
    write_csv(theirs, "site,best_mse\nhs2,0.1\nhs4,0.2\n", records.expected(config, "results/layer_sweep/targets.csv", 360))
    assert records.load(config, str(ours), 360).startswith("site,best_mse")
    import shutil

    shutil.copy(theirs, ours)  # the CSV alone: its sidecar no longer matches
    with pytest.raises(UnreadableFile, match=rf"{ours} does not match its record {sidecar(ours)}"):
        read_csv(ours)
    shutil.copy(sidecar(theirs), sidecar(ours))  # both: the record says where it belongs
    with pytest.raises(ProvenanceMismatch, match="where is 'sweep' in the file, this step expects 'study'"):
        records.load(config, str(ours), 360)
    import pandas

    assert list(pandas.read_csv(ours)["site"]) == ["hs2", "hs4"]  # the CSV itself stays plain CSV


def test_a_step_budget_decision_of_another_study_or_edited_is_refused(config, tmp_path):
    from reachability import budget
    from reachability.comparison import model_study

    path = tmp_path / "results" / "step_budget.json"
    loss = np.tile(np.linspace(2.0, 1.0, 300), (16, 1))  # every curve still falling: the budget extends
    decision = budget.decide(loss, config["optimizer"], config["metrics"])
    assert decision["steps"] == 360
    write_json(path, decision, records.budget_record(model_study(config, config["compare"]["models"][0])))
    with pytest.raises(ProvenanceMismatch, match="model is 'resources/demo-model-32' in the file"):
        budget.read_decision(str(path), config)
    write_json(path, {**decision, "steps": 330}, records.budget_record(config))  # edited, checksum made again
    with pytest.raises(UnreadableFile, match=r"steps = 330, but its own verdict .* chooses 360"):
        budget.read_decision(str(path), config)
    write_json(path, decision, records.budget_record(config))
    assert budget.read_decision(str(path), config)["steps"] == 360
    assert "360 steps" in budget.status(str(path), config)
    other = {**config, "metrics": {**config["metrics"], "plateau_tolerance": 0.5}}
    with pytest.raises(ProvenanceMismatch, match="plateau is"):
        budget.read_decision(str(path), other)  # decided under other plateau settings
    # at every start: this study's decision made under other settings is to be made again (the
    # checkpoint reruns), another study's is refused
    assert budget.current(str(path), other) is None and "pending (to be decided again)" in budget.status(str(path), other)
    more = {**config, "optimizer": {**config["optimizer"], "steps": 301}}
    assert budget.current(str(path), more) is None
    write_json(path, decision, records.budget_record(model_study(config, config["compare"]["models"][0])))
    with pytest.raises(ProvenanceMismatch, match="model is 'resources/demo-model-32' in the file"):
        budget.status(str(path), other)


def test_a_flipped_byte_in_a_packs_data_is_named(tmp_path):
    import h5py

    path = tmp_path / "pack.h5"
    write_h5(path, {"final_mse": np.linspace(1, 2, 4096), "pack": np.float64(3.0)}, {"a": 1})
    with h5py.File(path, "r") as f:
        offset = f["final_mse"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 100: offset + 356] = bytes(b ^ 0xFF for b in data[offset + 100: offset + 356])  # 256 bytes
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableFile, match=rf"{path}: dataset 'final_mse' fails its checksum .* Delete it"):
        read_h5(path)
    assert read_h5(path, ["pack"])[0]["pack"] == 3.0  # the rest of the file is intact, and read


def test_every_study_file_has_a_record_its_reader_can_expect(config):
    """Each kind of file a later rule reads has a place and a record: the pool to the comparison."""
    paths = ["results/pool/tokens.h5", "results/cache/hs4/pool_residuals.h5", "results/targets/hs4/experiment1/0-16.h5",
             "results/experiment1/runs/hs4/0-16_s300.h5", "results/experiment1/runs.h5",
             "results/experiment1/metrics.json", "results/experiment1/solutions.json",
             "results/hard_prompt/hard_prompts.json", "results/step_budget.json", "results/findings.json",
             "results/layer_sweep.json", "results/targets.csv", "results/layer_sweep/targets.csv",
             "results/boundary.json", "results/layer_sweep/boundary.json", "results/perturbation/kl_vs_epsilon.json",
             "results/perturbation/placement_curve.json", "results/perturbation/placement.json",
             "results/compare/models.json"]
    kinds = [records.place_of(p)[0] for p in paths]
    assert len(set(kinds)) == len(kinds)  # each its own kind
    for path in paths:
        expected = records.expected(config, path, 360)
        assert expected["model"] == "resources/demo-model" and expected["seq_len"] == 20, path
