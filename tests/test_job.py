"""What every rule script shares: the code digest that makes exactly the changed code stale."""

import pytest

from reachability.job import code_digest


def package(tmp_path, **modules):
    root = tmp_path / "reachability"
    root.mkdir(exist_ok=True)
    (root / "__init__.py").write_text('"""the package"""\n')
    for name, text in modules.items():
        (root / f"{name}.py").write_text(text)
    return root


def test_the_digest_follows_imports_and_ignores_comments_and_docstrings(tmp_path):
    script = tmp_path / "rule.py"
    script.write_text("from reachability.results import collect\n")
    root = package(tmp_path, results="from . import metrics\n\ndef collect():\n    return metrics.best()\n",
                   metrics='def best():\n    """Best."""\n    return 1\n', plots="def draw():\n    pass\n")
    before = code_digest(script, root)
    (root / "metrics.py").write_text('# a remark\ndef best():\n    """The best one."""\n\n    return 1\n')
    (root / "plots.py").write_text("def draw():\n    return 2\n")  # not imported by the script
    assert code_digest(script, root) == before
    (root / "metrics.py").write_text("def best():\n    return 2\n")  # imported through results
    assert code_digest(script, root) != before


REGISTRY = """from . import targets as T
from .seeds import seed_of

REGISTRY = {}
LIMIT = 3


def register(record):
    REGISTRY[record.name] = record
    return record


class Experiment:
    def __init__(self, name, builder):
        self.name, self.builder = name, builder


register(Experiment("exp_a", T.doubled))
register(Experiment("exp_b", lambda x: T.tripled(x) + LIMIT))
"""
TARGETS = """from .seeds import seed_of


def doubled(x):
    return 2 * x + seed_of(x)


def tripled(x):
    return 3 * x
"""
METHODS = """METHODS = {}


def method(cls):
    METHODS[cls.name] = cls
    return cls


class Adam:
    def step(self, x):
        return x - 0.1


@method
class Soft(Adam):
    name = "soft"


@method
class Pez(Adam):
    name = "pez"

    def step(self, x):
        return round(x)
"""


def registry_package(tmp_path):
    return package(tmp_path, experiments=REGISTRY, targets=TARGETS, methods=METHODS,
                   seeds="def seed_of(x):\n    return 0\n", engine="def run():\n    return 1\n")


def test_a_registry_is_digested_by_the_parts_a_job_uses(tmp_path):
    """An experiment's job digests its own record, the builder it names and what that uses; a
    pack digests the method classes it runs. Adding a record, a builder, a constant or a method
    that the job does not use changes nothing; editing what it uses does."""
    root = registry_package(tmp_path)
    script = tmp_path / "rule.py"
    script.write_text("from reachability.experiments import REGISTRY\nfrom reachability import engine\n")

    def digest(*roots):
        return code_digest(script, root, roots)

    a, b, soft = digest(("experiments", "exp_a")), digest(("experiments", "exp_b")), digest(("methods", "soft"))
    assert len({a, b, soft}) == 3
    add = {"experiments": REGISTRY + 'register(Experiment("exp_c", T.halved))\nUNUSED = 5\n',
           "targets": TARGETS + "\n\ndef halved(x):\n    return x / 2\n",
           "methods": METHODS + '\n\n@method\nclass Gcg:\n    name = "gcg"\n'}
    for name, text in add.items():
        (root / f"{name}.py").write_text(text)
    assert (digest(("experiments", "exp_a")), digest(("experiments", "exp_b")), digest(("methods", "soft"))) == (a, b, soft)
    (root / "targets.py").write_text(add["targets"].replace("2 * x", "2.5 * x"))  # exp_a's builder
    assert digest(("experiments", "exp_a")) != a and digest(("experiments", "exp_b")) == b
    (root / "experiments.py").write_text(add["experiments"].replace("LIMIT = 3", "LIMIT = 4"))  # exp_b's constant
    assert digest(("experiments", "exp_b")) != b
    (root / "seeds.py").write_text("def seed_of(x):\n    return 1\n")  # what exp_a's builder uses, in turn
    changed_a = digest(("experiments", "exp_a"))
    (root / "methods.py").write_text(add["methods"].replace("return round(x)", "return int(x)"))  # PEZ only
    assert digest(("methods", "soft")) == soft and digest(("methods", "pez")) != digest(("methods", "soft"))
    (root / "methods.py").write_text(add["methods"].replace("return x - 0.1", "return x - 0.2"))  # their base
    assert digest(("methods", "soft")) != soft and digest(("experiments", "exp_a")) == changed_a


def test_a_job_that_runs_a_record_does_not_digest_how_it_is_shown(tmp_path):
    """A record's presentation (its label, its lines of the guide) is digested by the rules that
    show it, not by the ones that make or run its targets."""
    root = registry_package(tmp_path)
    script = tmp_path / "rule.py"
    script.write_text("from reachability import engine\n")
    shown = REGISTRY.replace('Experiment("exp_a", T.doubled)', 'Experiment("exp_a", T.doubled, label="A")')

    def digests():
        return (code_digest(script, root, (("experiments", "exp_a", ("label",)),)),
                code_digest(script, root, (("experiments", "exp_a"),)))

    (root / "experiments.py").write_text(shown)
    runs, full = digests()
    (root / "experiments.py").write_text(shown.replace('label="A"', 'label="Exp A"'))
    assert digests()[0] == runs and digests()[1] != full


def test_a_registry_entry_the_digest_cannot_find_is_an_error(tmp_path):
    """A rule names the registry entries its job runs; one registered in a form the digest does
    not read would be digested as nothing, and its edits would rerun nothing."""
    script = tmp_path / "rule.py"
    script.write_text("from reachability import experiments\n")
    root = package(tmp_path, experiments='REGISTRY = {}\nQUIET = REGISTRY.setdefault("quiet", 1)\n')
    with pytest.raises(ValueError, match="has no entry 'quiet'"):
        code_digest(script, root, (("experiments", "quiet"),))
