"""ruff and mypy, configured in pyproject.toml, find nothing in gateway/, resolvers/ and adapters/.

They run as part of the test command, so `.ci/run` (which runs exactly the README's test command)
runs them too; both come with the `test` extra, at the versions pyproject.toml pins.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["gateway", "resolvers", "adapters"]


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).parent / tool
    if not executable.exists():
        pytest.fail(f"{tool} is not installed beside this Python: pip install -e '.[test]'", pytrace=False)
    return subprocess.run([str(executable), *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", *PACKAGES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing() -> None:
    result = run("mypy")  # the files and settings are pyproject.toml's
    assert result.returncode == 0, result.stdout + result.stderr
