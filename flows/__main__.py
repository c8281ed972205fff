"""`python -m flows` runs the `sentinel` command line."""

from flows.cli import app

app(prog_name="sentinel")
