"""envs/ (for `--sdm conda`) stays in step with pyproject.toml; conda is not reachable here."""

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from workflow_helpers import ROOT


def pins(env_file):
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    return {canonicalize_name(Requirement(p).name): Requirement(p) for p in pip}


def test_every_rule_names_an_env_that_exists_and_its_threads():
    named = set()
    for smk in (ROOT / "rules").glob("*.smk"):
        text = smk.read_text()
        # a `use rule ... with:` inherits its parent's conda and threads (the parent is in the same file)
        rules = re.findall(r"^\s*(?:rule|checkpoint) (\w+):", text, flags=re.M)
        reused = re.findall(r"^\s*use rule (\w+) as \w+ with:", text, flags=re.M)
        assert set(reused) <= set(rules), f"{smk.name}: a rule reuses one from another file"
        assert text.count("conda:") == len(rules), f"{smk.name}: a rule without conda:"
        assert text.count("threads:") == len(rules), f"{smk.name}: a rule without threads:"
        assert text.count("log:") == len(rules) + len(reused), f"{smk.name}: a rule without its own log:"
        named |= set(re.findall(r'conda:\s*\n\s*"([^"]+)"', text))
    assert named and all((ROOT / "rules" / n).resolve().is_file() for n in named)


def test_env_pins_satisfy_pyproject_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for env_file in (ROOT / "envs").glob("*.yaml"):
        pinned = pins(env_file)
        for dep in map(Requirement, project["dependencies"]):
            name = canonicalize_name(dep.name)
            assert name in pinned, f"{env_file.name} lacks {dep.name}"
            (spec,) = pinned[name].specifier
            assert spec.operator == "==", f"{env_file.name}: {name} is not pinned"
            assert dep.specifier.contains(spec.version), f"{name}=={spec.version} is outside {dep}"
