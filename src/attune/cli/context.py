"""Shared CLI plumbing: options every command takes, runtime opening, error printing.

The runtime (and the model stack it brings: scipy, scikit-learn, implicit, …) is imported only
when a command opens it: importing the CLI took 2.5 s and 240 MB before, paid by every
command and by every ingest worker (a spawned process imports the `attune` script again).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from attune.errors import AttuneError
from attune.settings import Settings, load_settings

if TYPE_CHECKING:
    from attune.runtime import Runtime

console = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="ATTUNE_DATA_DIR", help="Data directory (default ./attune-data)."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="ATTUNE_DATABASE_URL", help="sqlite:///PATH or postgresql://…"),
]


def settings_for(data_dir: Path | None, database_url: str | None = None) -> Settings:
    """Settings with the CLI's explicit options applied on top of file and environment."""
    return load_settings(data_dir=data_dir, database_url=database_url)


@contextmanager
def open_runtime(data_dir: Path | None, database_url: str | None = None) -> Iterator[Runtime]:
    """Open the installation for one command and close it afterwards."""
    from attune.runtime import Runtime  # here, not at the top: see the module docstring

    runtime = Runtime.open(settings_for(data_dir, database_url))
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Print Attune errors as one red line and exit 1, instead of a traceback."""
    try:
        yield
    except AttuneError as exc:
        # Messages quote user input (SQL, file content); escape it so "[...]" is not read as markup.
        console.print(f"[red]error:[/red] {escape(exc.message)}")
        for line in exc.errors[:20]:
            console.print(f"  - {escape(line)}")
        sys.exit(1)
