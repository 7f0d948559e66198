"""The README's tour runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks()
    assert blocks, "the README lost its Python tour"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOOPWISE_DATABASE_URL", raising=False)
    namespace: dict[str, object] = {}
    for block in blocks:  # one session, top to bottom, as a reader would paste them
        exec(compile(block, "README.md", "exec"), namespace)
    loop = namespace["loop"]
    triage = namespace["triage"]
    assert os.path.exists(tmp_path / "loopwise.db")
    info = triage.info  # type: ignore[attr-defined]
    assert info["policy"]["stopped"] is True
    assert info["model"]["version"] == 1
    assert loop.verify_audit()["ok"]  # type: ignore[attr-defined]
    loop.close()  # type: ignore[attr-defined]


def test_the_test_command_is_what_ci_runs() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install -e '.[dev]' && pytest" in README.read_text()
    assert "pip install -e '.[dev]' && pytest" in ci
