"""The workflow passes `snakemake --lint` (agenda and demo configs), `snakefmt --check` and the
Python code `ruff check` (its settings in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

import pytest

from workflow_helpers import ROOT


@pytest.mark.parametrize("configfile", ["config.yaml", "demo.yaml"])
def test_snakemake_lint_is_clean(configfile):
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--configfile", configfile],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_snakefmt_check_passes():
    snakefmt = Path(sys.executable).with_name("snakefmt")
    result = subprocess.run([str(snakefmt), "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_ruff_check_passes():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
