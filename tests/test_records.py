"""What a study's files record and what their readers expect: every field, from the file's place."""

import json

import numpy as np
import pytest

from reachability import records
from reachability.storage import (
    ProvenanceMismatch, UnreadableFile, read_attrs, read_h5, read_json, write_h5, write_json, writing,
)
from workflow_helpers import ROOT, demo_config


@pytest.fixture
def config():
    from snakemake.utils import validate

    c = demo_config()
    validate(c, str(ROOT / "schemas" / "config.schema.yaml"))
    return c


def pack(path, record):
    write_h5(path, {"final_mse": np.ones(4)}, {**record, "device": "cpu", "optimising_s": 1.0})


def test_a_reader_expects_every_field_that_decides_a_files_contents(config):
    expected = records.expected(config, "results/experiment3/runs/hs4/16-32_s300.h5")
    assert expected == {"model": "resources/demo-model", "revision": None, "seq_len": 20, "pool_size": 400,
                        "dataset": expected["dataset"], "site": "hidden_states[4]", "experiment": "experiment3",
                        "conditions": ["a-0.5", "a0", "a0.25", "a0.5", "a0.75", "a1", "a1.5", "a2"], "restarts": 1,
                        "pack": "16-32", "steps": 300, "lr": 0.05, "precision": "fp32",
                        "methods": {c: {"method": "soft"} for c in expected["conditions"]}}
    hard = records.expected(config, "results/hard_prompt/runs/hs4/0-8_s300.h5")["methods"]
    assert hard == {"pez": {"method": "pez"}, "gcg": {"method": "gcg", **config["experiments"]["hard_prompt"]["gcg"]}}
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


def test_a_truncated_or_broken_file_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "pack.h5"
    write_h5(path, {"x": np.arange(100000)}, {"a": 1})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a crashed copy
    for read in (read_h5, read_attrs):
        with pytest.raises(UnreadableFile, match=rf"{path} cannot be read .* truncated .* Delete it"):
            read(path)
    broken = tmp_path / "metrics.json"
    broken.write_text('{"experiment": "experiment1", "condi')
    with pytest.raises(UnreadableFile, match=rf"{broken} cannot be read .* not JSON\. Delete it"):
        read_json(broken)


def test_every_output_lands_whole_or_not_at_all(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    with pytest.raises(TypeError):
        write_json(path, {"value": object()})  # fails while writing
    with pytest.raises(RuntimeError), writing(tmp_path / "out" / "table.md") as f:
        f.write("| half a table")
        raise RuntimeError("killed")
    assert list((tmp_path / "out").iterdir()) == []  # no partial file, no temporary left behind
    write_json(path, {"value": np.float32(0.5), "missing": float("nan")})
    assert json.loads(path.read_text()) == {"value": 0.5, "missing": None}


def test_no_rule_script_writes_an_output_in_place():
    """Every output goes through storage's atomic helpers (write_h5, write_json, writing, the
    figures' _save): a second Snakemake must never see a half-written file at a final path."""
    scripts = sorted((ROOT / "workflow_scripts").glob("*.py"))
    assert scripts and not [s.name for s in scripts if "open(snakemake.output" in s.read_text()]
    assert "atomic(path)" in (ROOT / "workflow_scripts" / "reachability" / "plots.py").read_text()
