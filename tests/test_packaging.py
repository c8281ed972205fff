"""The package metadata tells the truth: every import is declared in the extra that installs its package,
the pure core needs none of the orchestration stack, and the license and version are what they say.
"""

import ast
import functools
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OURS = {"vae", "validation", "flows"}
# what installs each part: the core alone, the core and an extra, or everything
EXTRAS_OF = {
    "vae": (),
    "vae/export.py": ("export",),
    "validation": ("validation",),
    "flows": ("all",),
    "flows/stack": ("all", "stack"),
}
STACK = {"prefect", "mlflow", "boto3", "great-expectations", "evidently", "fastapi", "typer"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def declared(extras: tuple[str, ...]) -> set[str]:
    """Distributions installed by the core plus `extras`, following the extras' references to the project."""
    names = {_name(r) for r in PROJECT["dependencies"]}
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for r in PROJECT["optional-dependencies"][extra]:
            req = Requirement(r)
            if req.name == PROJECT["name"]:
                todo += [e for e in req.extras if e not in seen]
            else:
                names.add(_name(r))
    return names


def _third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - OURS - set(sys.stdlib_module_names) - {"__future__"}


@functools.cache
def packages_distributions() -> dict[str, list[str]]:
    """Importable top-level names -> the distributions that install them (slow: read once)."""
    return metadata.packages_distributions()


def _files():
    return sorted(p for pkg in OURS for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_import_is_declared_where_the_module_is_installed(path):
    relative = path.relative_to(ROOT).as_posix()
    extras = EXTRAS_OF[max((k for k in EXTRAS_OF if relative.startswith(k)), key=len)]
    allowed = declared(extras)
    distributions = packages_distributions()
    for module in sorted(_third_party_imports(path)):
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [module])}
        assert names & allowed, (
            f"{relative} imports {module} ({names}), not declared for extras {extras or 'core'}"
        )


def test_the_core_installs_without_the_orchestration_stack():
    assert not declared(()) & STACK


def test_the_license_file_is_the_declared_license():
    assert PROJECT["license"] == "Apache-2.0"
    head = (ROOT / "LICENSE").read_text().split("TERMS AND CONDITIONS")[0]
    assert "Apache License" in head and "Version 2.0, January 2004" in head


def test_the_version_has_a_changelog_entry():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(PROJECT['version'])} ", changelog, re.MULTILINE)


def test_the_command_line_reports_the_installed_version():
    out = subprocess.run(
        [sys.executable, "-m", "flows", "--version"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"vae-sentinel {PROJECT['version']}"
