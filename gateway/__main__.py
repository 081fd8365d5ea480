"""`python -m gateway` is the `parkgate` command."""

from gateway.cli import app

app(prog_name="parkgate")
