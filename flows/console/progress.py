"""Terminal progress for long work: rich progress bars fed by the jobs' callbacks (epochs, days, files)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vae.training import EpochStats


def _progress(console: Console) -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
    )
    return Progress(*columns, console=console, transient=True)


@contextmanager
def epoch_bar(console: Console, label: str, max_epochs: int) -> Iterator[Callable[[EpochStats], None]]:
    """Yield an `on_epoch` callback that advances a bar and shows the losses; early stops end it."""
    with _progress(console) as progress:
        task = progress.add_task(label, total=max_epochs, info="")

        def on_epoch(stats: EpochStats) -> None:
            info = f"loss {stats.loss:.3f} val {stats.val_loss:.3f} KL {stats.kl:.2f} AU {stats.active_units}"
            progress.update(task, completed=stats.epoch + 1, info=info)

        yield on_epoch


@contextmanager
def count_bar(console: Console, label: str) -> Iterator[Callable[[int, int, str], None]]:
    """Yield an `on_step(done, total, info)` callback that moves a bar (days replayed, files scored)."""
    with _progress(console) as progress:
        task = progress.add_task(label, total=None, info="")

        def on_step(done: int, total: int, info: str) -> None:
            progress.update(task, completed=done, total=total, info=info)

        yield on_step
