"""The experiment registry is the one place an experiment is said: its config section, its
conditions across methods, its starts, its labels come from its record, and one record (with
its builder) is enough to add an experiment to the study."""

import shutil
import subprocess
import sys

import numpy as np
import yaml

from reachability import experiments, validation
from reachability.runs import RunId, method_records
from workflow_helpers import AGENDA_ONLY, ROOT, demo_config, planned_jobs, planned_outputs

SCHEMA = validation.schema(ROOT / "schemas" / "config.schema.yaml", experiments)["properties"]


def test_the_schema_takes_each_experiments_section_from_its_record():
    sections = SCHEMA["experiments"]["properties"]
    assert list(sections) == experiments.names()
    swept = SCHEMA["layer_sweep"]["properties"]["experiments"]["items"]["enum"]
    assert swept == [n for n in experiments.names() if experiments.get(n).sweepable]
    assert SCHEMA["compare"]["properties"]["experiments"]["items"]["enum"] == experiments.names()
    for name, section in sections.items():  # every key a record reads is in its section, with a default
        record = experiments.get(name)
        defaults = {k: v["default"] for k, v in section["properties"].items()}
        assert record.count in defaults and set(record.settings) <= set(defaults)
        assert record.all_conditions(defaults)[0] in record.conditions(defaults) or defaults["methods"][0] != "soft"
    assert sections["experiment3"]["properties"]["alphas"]["default"][0] == -0.5
    assert set(SCHEMA["methods"]["properties"]) == set(method_records()) == {"soft", "pez", "gcg", "norm_ball", "mixture", "inversion"}
    assert SCHEMA["methods"]["properties"]["gcg"]["properties"]["top_k"]["default"] == 256


def test_methods_are_an_axis_of_any_experiments_conditions():
    spec = {"alphas": [0, 0.5], "methods": ["soft", "pez", "norm_ball"]}
    assert experiments.get("experiment3").all_conditions(spec) == ["a0", "a0.5", "a0/pez", "a0.5/pez", "a0/norm_ball",
                                                                   "a0.5/norm_ball"]
    assert experiments.get("experiment1").all_conditions({"methods": ["soft"]}) == ["real"]  # the agenda's names


def test_paired_runs_share_their_starts_as_the_records_say():
    exp3 = experiments.get("experiment3")
    assert exp3.prompt_seed("a0.5", 2, 1) == exp3.prompt_seed("a2", 2, 1) != exp3.prompt_seed("a2", 2, 0)
    assert RunId("ablation", "no_ffn", 3, 1).seed == RunId("experiment1", "real", 3, 1).seed
    assert RunId("experiment2a", "matched", 3, 1).seed != RunId("experiment1", "real", 3, 1).seed
    # a method that starts where the soft prompt does shares its start; text methods share their tokens
    assert RunId("experiment2b", "isotropic/norm_ball", 3, 1).seed == RunId("experiment2b", "isotropic", 3, 1).seed
    assert RunId("experiment2b", "isotropic/pez", 3, 1).seed == RunId("experiment2b", "isotropic/gcg", 3, 1).seed
    assert RunId("experiment2b", "isotropic/pez", 3, 1).seed != RunId("experiment2b", "isotropic", 3, 1).seed
    # every text run on Exp 1's targets starts from the tokens the text experiment drew
    assert RunId("experiment1", "real/pez", 3, 1).seed == RunId("hard_prompt", "text/gcg", 3, 1).seed \
        == RunId("ablation", "no_ffn/pez", 3, 1).seed


def test_labels_name_the_condition_and_its_method_once():
    assert experiments.get("experiment3").label_of("a0.25") == "Exp 3 α=0.25"
    assert experiments.get("experiment1").label_of("real") == "Exp 1 real"
    assert experiments.get("experiment1").label_of("real/pez") == "Exp 1 real (PEZ)"
    assert experiments.get("hard_prompt").label_of("text/gcg") == "Text (GCG)"
    assert experiments.get("ablation").label_of("no_attention") == "Ablation no attention"
    ball = experiments.Experiment("ball", "Norm ball", experiments.fixed("ball"), lambda *a: [])
    assert ball.label_of("ball") == "Norm ball" and ball.label_of("ball/gcg") == "Norm ball (GCG)"


def test_a_builder_receives_its_experiments_settings():
    residuals = np.random.default_rng(0).standard_normal((6, 3, 4)).astype(np.float32)
    stats = {"dim_std": np.ones(4, np.float32)}
    record = experiments.get("experiment4")
    spec = {"fractions": [0.0, 0.5], "methods": ["soft", "pez"]}
    np.testing.assert_array_equal(record.make(spec, "f0/pez", [1, 2], residuals, stats), residuals[[1, 2]])
    assert record.make(spec, "f0.5", [], residuals, stats).shape == (0, 3, 4)


TOY = '''

def low_variance_noise(spec, condition, ids, residuals, stats):
    """A real target plus noise of spec["scale"] x each dimension's std, in the pool's lowest-variance half."""
    quiet = np.argsort(stats["dim_std"])[: len(stats["dim_std"]) // 2]
    out = []
    for t in ids:
        noise = numpy_rng("toy", t).standard_normal(residuals[t].shape) * stats["dim_std"] * spec["scale"]
        target = residuals[t].copy()
        target[:, quiet] += noise[:, quiet]
        out.append(target)
    return out
'''
RECORD = '''

register(Experiment(
    "toy", "Toy", fixed("quiet"), T.low_variance_noise, enabled=False, n=4, restarts=1, sources=lambda t: [t],
    shared_prompts=as_exp1, settings={"scale": {"type": "number", "minimum": 0, "default": 1.0}},
    findings=(Line(guide.against, ("{label} reaches as well as Exp 1", "as_well",
                                   lambda condition: ("experiment1", "real"))),)))
'''


def test_a_toy_experiment_is_its_record_and_its_builder(tmp_path):
    """The proof that one record (with its builder) is enough: a copy of the workflow with one
    more record and builder, and a config that enables it and sets its own key, plans the toy's
    packs, targets, aggregation, figures and findings."""
    copy = tmp_path / "workflow"
    copy.mkdir()
    for name in ("Snakefile", "rules", "workflow_scripts", "schemas", "report", "demo", "envs"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, copy / name)
    library = copy / "workflow_scripts" / "reachability"
    (library / "targets.py").write_text((library / "targets.py").read_text() + TOY)
    (library / "experiments.py").write_text((library / "experiments.py").read_text() + RECORD)
    config = demo_config(**{**AGENDA_ONLY, "optimizer.extend_steps": None,
                            **{f"experiments.{e}.enabled": False for e in
                               ("experiment2a", "experiment2b", "experiment3", "experiment4")}})
    config["experiments"]["toy"] = {"enabled": True, "scale": 2.0, "methods": ["soft", "pez"]}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "--directory",
                             str(tmp_path / "work"), "--configfile", str(tmp_path / "study.yaml"), "--dry-run"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "results/toy/runs/hs4/0-8_s300.h5" in planned_outputs(result, "optimise_pack")  # 4 targets x 2 methods
    assert "results/targets/hs4/toy/0-8.h5" in planned_outputs(result, "build_targets")
    assert "results/toy/metrics.json" in planned_outputs(result, "aggregate")
    assert "results/toy/loss_curves.png" in planned_outputs(result, "plot_experiment")
    jobs = planned_jobs(result)
    assert jobs["aggregate"] == 2 and jobs["plot_experiment"] == 2 and jobs["findings"] == 1
