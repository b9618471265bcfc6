"""What rule scripts share: the code digest that makes library changes stale."""

from reachability.pipeline import code_digest


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
