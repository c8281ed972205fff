"""The `sentinel` command line."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer
from rich.console import Console

from flows.demo import run_demo
from flows.settings import Settings
from vae.errors import SentinelError

app = typer.Typer(
    help="VAE Sentinel: a VAE anomaly detector that keeps itself calibrated and current.\n\n"
    "Configuration comes from sentinel.toml, then SENTINEL_* environment variables "
    "(nested with __, e.g. SENTINEL_DETECTOR__TARGET_FPR=0.005).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
console = Console()


@app.callback()
def main() -> None:
    """VAE Sentinel command line."""


@app.command()
def demo(seed: int = typer.Option(None, help="Seed of the split and detectors (default: settings).")) -> None:
    """Train the detector on real datasets shipped in data/ and print a results table.

    For each dataset, half of the normal rows train; the other half plus every anomaly test. The table
    shows AUROC, AUPRC and the false-positive rate realized at the threshold calibrated on held-out normal
    rows. Models are saved under SENTINEL_HOME/demo/.
    """
    settings = Settings()
    if seed is not None:
        settings = settings.model_copy(update={"demo": settings.demo.model_copy(update={"seed": seed})})
    _guard(lambda: run_demo(settings, console))


def _guard(action: Callable[[], object]) -> None:
    """Run `action`; a SentinelError becomes a one-line message and exit code 1."""
    try:
        action()
    except SentinelError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
