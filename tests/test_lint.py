"""ruff and mypy run with the tests, so CI checks style and types as it checks behaviour."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "src", "tests", "bench"], ["mypy"]],
    ids=["ruff", "mypy"],
)
def test_clean(command: list[str]) -> None:
    exe = shutil.which(command[0])
    if exe is None:
        pytest.skip(f"{command[0]} is not installed (pip install -e '.[dev]')")
    out = subprocess.run([exe, *command[1:]], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
