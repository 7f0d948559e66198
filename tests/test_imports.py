"""The public surface and the layering promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import loopwise

ROOT = Path(__file__).resolve().parents[1]

PURE = ["loopwise.routing", "loopwise.learning", "loopwise.consensus", "loopwise.oversight",
        "loopwise.audit", "loopwise.domain"]
HEAVY = ["sqlalchemy", "fastapi", "starlette", "jinja2", "pydantic", "typer", "httpx",
         "alembic", "uvicorn"]


@pytest.mark.parametrize("module", PURE)
def test_algorithm_packages_pull_in_no_web_or_database_stack(module: str) -> None:
    """Importing an algorithm package loads none of the service's libraries."""
    code = (
        f"import sys, {module}\n"
        f"bad = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"


def test_all_is_complete_and_importable() -> None:
    """Every name in loopwise.__all__ resolves, once, and every lazy name is listed."""
    assert len(set(loopwise.__all__)) == len(loopwise.__all__)
    assert set(loopwise._LAZY) | {"__version__"} == set(loopwise.__all__)
    for name in loopwise.__all__:
        assert getattr(loopwise, name) is not None


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError):
        loopwise.NoSuchThing  # noqa: B018


def test_import_linter_contracts_hold() -> None:
    """The layers of ARCHITECTURE.md (checked by import-linter)."""
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([exe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
