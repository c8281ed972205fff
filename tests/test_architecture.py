"""The layering holds: the core is pure, and each room of the shell imports only the rooms below it.

`vae` < `validation` < `flows`; inside `flows`: `errors`, `settings`, `runtime` < `adapters` <
`jobs`, `serving` < `console` < `cli`, and `stack` (processes only) < `cli`. Imports inside functions
and under TYPE_CHECKING count too.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vae", "validation", "flows")
NOT_IN_CORE = {"prefect", "mlflow", "boto3", "botocore", "evidently_ui", "fastapi", "uvicorn", "typer"}
BASE = {"flows", "flows.errors", "flows.settings", "flows.runtime"}
MAY_IMPORT = {
    "vae": {"vae"},
    "validation": {"vae", "validation"},
    "base": {"vae", "validation", "base"},
    "adapters": {"vae", "validation", "base", "adapters"},
    "jobs": {"vae", "validation", "base", "adapters", "jobs"},
    "serving": {"vae", "validation", "base", "adapters", "serving"},
    "console": {"vae", "validation", "base", "adapters", "jobs", "console"},
    "stack": {"vae", "validation", "base", "stack"},
    "cli": {"vae", "validation", "base", "adapters", "jobs", "serving", "console", "stack", "cli"},
}


def layer(module: str) -> str:
    """The layer of a dotted module name of this project."""
    parts = module.split(".")
    if parts[0] != "flows":
        return parts[0]
    if module in BASE:
        return "base"
    if module in {"flows.cli", "flows.__main__"}:
        return "cli"
    if module == "flows.pyfunc":  # the shim older registered versions import
        return "adapters"
    return parts[1]


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _files():
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _imports(path: Path):
    """(line, imported module) for every import in the file, and the lines that read the environment."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from ((node.lineno, f"{node.module}.{a.name}") for a in node.names)
        elif isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
            yield node.lineno, "os.environ"


def _ours(name: str) -> str | None:
    """The project module `name` refers to (a module or a name inside one), or None for other packages."""
    if name.split(".")[0] not in PACKAGES:
        return None
    parts = name.split(".")
    while parts and not any((ROOT / Path(*parts)).with_suffix(s).exists() for s in (".py", "")):
        parts.pop()
    return ".".join(parts)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_imports_only_the_layers_below_it(path):
    here = layer(module_of(path))
    assert here in MAY_IMPORT, f"{path.relative_to(ROOT)} is in no known layer ({here}): add it to the table"
    for line, name in _imports(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        if here in {"vae", "validation"}:
            assert name != "os.environ", f"{where} reads the environment"
            assert name.split(".")[0] not in NOT_IN_CORE, f"{where} imports {name} into the core"
        target = _ours(name)
        if target:
            assert layer(target) in MAY_IMPORT[here], (
                f"{where}: {here} may not import {target} ({layer(target)})"
            )


def test_the_layer_table_knows_every_room():
    rooms = {layer(module_of(p)) for p in _files()}
    assert rooms == set(MAY_IMPORT), rooms ^ set(MAY_IMPORT)


def test_the_command_line_starts_without_loading_the_heavy_libraries():
    """`sentinel --help` and the settings must not pay for torch, Evidently, MLflow, Prefect or SciPy."""
    probe = "import sys, flows.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "'typer'" in loaded  # the probe saw the command line's own imports
    for heavy in ("torch", "evidently", "mlflow", "prefect", "great_expectations", "scipy"):
        assert f"'{heavy}'" not in loaded, f"importing flows.cli loads {heavy}"
