"""The `instbench` command: a thin Typer shell over the library.

Each command group lives in its own module and is mounted here. Errors the user can fix
(`UserError`) print one line and exit 2; nothing else is caught here, so a bug shows its
traceback.
"""

from __future__ import annotations

import sys

import typer

from instbench import __version__
from instbench.errors import InstbenchError

app = typer.Typer(
    name="instbench",
    help="Measure what AWS EC2 instance types really deliver (STREAM first), with provenance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"instbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Measure what AWS EC2 instance types really deliver."""


def _mount() -> None:
    """Attach the command modules (imported here so each stays independent)."""
    from instbench.cli import (
        benchmarks_cmd,
        data_cmd,
        import_cmd,
        infra_cmd,
        report_cmd,
        results_cmd,
        run_cmd,
        runs_cmd,
        sandbox_cmd,
        types_aws_cmd,
        types_cmd,
    )

    run_cmd.register(app)
    runs_cmd.register(app)
    types_cmd.register(app)
    types_aws_cmd.register(types_cmd.types_app)
    data_cmd.register(app)
    report_cmd.register(app)
    results_cmd.register(app)
    benchmarks_cmd.register(app)
    sandbox_cmd.register(app)
    infra_cmd.register(app)
    import_cmd.register(app)


_mount()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, map typed errors to exit codes."""
    try:
        app(args=argv, standalone_mode=True)
    except InstbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
