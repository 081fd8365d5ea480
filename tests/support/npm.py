"""The npm projects of the tests (tests/e2e/interop/, tests/e2e/federation/): installed from their lock files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def installed(project: Path, needed_by: str, timeout_s: float) -> Path:
    """`project`'s node_modules, installed (`npm ci` on its lock file). Without node and npm the tests fail
    (never skip silently) saying how to install them; an install that fails fails the tests."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(f"{needed_by} need node and npm on PATH (node: {node}, npm: {npm}); "
                    "Debian/Ubuntu: apt-get install nodejs npm", pytrace=False)
    command = [npm, "ci" if (project / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
    result = subprocess.run(command, check=False, cwd=project, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed in {project}:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return project
