"""The core stays pure: vae/ and validation/ import no orchestration, tracking, cloud or environment."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"prefect", "mlflow", "boto3", "botocore", "flows", "evidently_ui"}


def _core_files():
    return sorted(p for pkg in ("vae", "validation") for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_is_pure(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
            pytest.fail(f"{path.name}:{node.lineno} reads the environment")
        else:
            continue
        bad = [n for n in names if n.split(".")[0] in FORBIDDEN]
        assert not bad, f"{path.name}:{node.lineno} imports {bad}"


def test_the_command_line_starts_without_loading_the_heavy_libraries():
    """`sentinel --help` and the settings must not pay for torch, Evidently, MLflow or Prefect imports."""
    probe = "import sys, flows.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "'typer'" in loaded  # the probe saw the command line's own imports
    for heavy in ("torch", "evidently", "mlflow", "prefect", "great_expectations"):
        assert f"'{heavy}'" not in loaded, f"importing flows.cli loads {heavy}"
