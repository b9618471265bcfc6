"""The experiment registry is the one list of experiments: the schema agrees with it, and one
record is enough to add an experiment to the study."""

import shutil
import subprocess
import sys

import yaml

from reachability import experiments
from reachability.runs import RunId
from workflow_helpers import AGENDA_ONLY, ROOT, demo_config, planned_jobs, planned_outputs

SCHEMA = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())["properties"]


def test_the_schema_and_the_registry_name_the_same_experiments():
    sections = SCHEMA["experiments"]["properties"]
    assert list(sections) == experiments.names()
    swept = SCHEMA["layer_sweep"]["properties"]["experiments"]["items"]["enum"]
    assert swept == [n for n in experiments.names() if experiments.get(n).sweepable]
    compared = SCHEMA["compare"]["properties"]["experiments"]["items"]["enum"]
    assert set(compared) <= set(experiments.names())
    for name, section in sections.items():  # each record reads its own section's keys
        record = experiments.get(name)
        defaults = {k: v["default"] for k, v in section["properties"].items()}
        assert record.count in defaults and record.conditions(defaults)
        assert all(c.startswith(("a", "f")) for c in record.conditions(defaults)) == bool(record.axis)


def test_paired_runs_share_their_prompts_as_the_records_say():
    exp3 = experiments.get("experiment3")
    assert exp3.prompt_seed("a0.5", 2, 1) == exp3.prompt_seed("a2", 2, 1) != exp3.prompt_seed("a2", 2, 0)
    assert RunId("ablation", "no_ffn", 3, 1).seed == RunId("experiment1", "real", 3, 1).seed
    assert RunId("experiment2a", "matched", 3, 1).seed != RunId("experiment1", "real", 3, 1).seed
    assert experiments.get("experiment3").label_of("a0.25") == "Exp 3 α=0.25"
    assert experiments.get("experiment1").label_of("real") == "Exp 1 real"


TOY = '''

register(Experiment("toy", "Toy", fixed("mirror"), T.real, findings=("all_converge", "toy", "mirror")))
'''


def test_a_toy_experiment_registered_alone_is_planned_aggregated_and_drawn(tmp_path):
    """The proof that one record is enough: a copy of the workflow with one more record in its
    registry, and nothing else changed, plans the toy's packs, its aggregation, its figures and
    its line of the findings."""
    copy = tmp_path / "workflow"
    copy.mkdir()
    for name in ("Snakefile", "rules", "workflow_scripts", "schemas", "report", "demo", "envs"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, copy / name)
    registry = copy / "workflow_scripts" / "reachability" / "experiments.py"
    registry.write_text(registry.read_text() + TOY)
    config = demo_config(**{**AGENDA_ONLY, "optimizer.extend_steps": None,
                            **{f"experiments.{e}.enabled": False for e in
                               ("experiment2a", "experiment2b", "experiment3", "experiment4")}})
    config["experiments"]["toy"] = {"enabled": True, "n_targets": 4, "restarts": 1}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "--directory",
                             str(tmp_path / "work"), "--configfile", str(tmp_path / "study.yaml"), "--dry-run"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "results/toy/runs/hs4/0-4_s300.h5" in planned_outputs(result, "optimise_pack")
    assert "results/targets/hs4/toy/0-4.h5" in planned_outputs(result, "build_targets")
    assert "results/toy/metrics.json" in planned_outputs(result, "aggregate")
    assert "results/toy/loss_curves.png" in planned_outputs(result, "plot_experiment")
    jobs = planned_jobs(result)
    assert jobs["aggregate"] == 2 and jobs["plot_experiment"] == 2 and jobs["findings"] == 1
