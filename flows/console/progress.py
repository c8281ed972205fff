"""Terminal progress for long work: a rich progress bar fed by the detector's per-epoch callback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vae.training import EpochStats


@contextmanager
def epoch_bar(console: Console, label: str, max_epochs: int) -> Iterator[Callable[[EpochStats], None]]:
    """Yield an `on_epoch` callback that advances a bar and shows the losses; early stops end it."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=max_epochs, info="")

        def on_epoch(stats: EpochStats) -> None:
            info = f"loss {stats.loss:.3f} val {stats.val_loss:.3f} KL {stats.kl:.2f} AU {stats.active_units}"
            progress.update(task, completed=stats.epoch + 1, info=info)

        yield on_epoch
