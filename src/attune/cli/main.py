"""``attune``: one data directory per installation; every command takes ``--data-dir``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attune.cli import context
from attune.cli.context import DatabaseUrl, DataDir, console, friendly_errors, open_runtime, settings_for
from attune.cli.models import register as register_model_commands
from attune.cli.privacy import audit_app, privacy_app
from attune.cli.segments import app as segments_app

app = typer.Typer(
    name="attune",
    help="Attune: self-hosted, real-time personalization.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(segments_app, name="segments")
app.add_typer(privacy_app, name="privacy")
app.add_typer(audit_app, name="audit")


@app.command()
def init(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Create the data directory, the database and the first admin API key (printed once)."""
    from attune.cli.setup import initialize

    with friendly_errors():
        initialize(settings_for(data_dir, database_url))


@app.command()
def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM); serve HTTPS.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM) of --ssl-certfile.")] = None,
    ingest_workers: Annotated[
        int | None,
        typer.Option(min=0, help="Processes that ingest event batches beside the server "
                     "(default: one per CPU core, at most 4, none on one core; 0: none)."),
    ] = None,
) -> None:
    """Serve the HTTP API with consumers running in the same process."""
    from attune.cli.serving import serve as run_server

    with friendly_errors():
        run_server(settings_for(data_dir, database_url), host=host, port=port, access_log=access_log,
                   ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, ingest_workers=ingest_workers)


@keys_app.command("create")
def keys_create(
    scopes: Annotated[str, typer.Option(help="Comma-separated: ingest, read, admin.")] = "ingest",
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    expires_days: Annotated[float | None, typer.Option(help="Expire after this many days.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key; the key itself is the last line of standard output (only its hash is kept)."""
    from attune.auth.keys import parse_scopes

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        key, secret = runtime.keys.create(
            parse_scopes(scopes), name=name, expires_in=expires_days * 86400 if expires_days else None
        )
        runtime.privacy.audit.append("cli", "key.create", key.key_id, {"scopes": sorted(key.scopes), "name": name})
        console.print(f"created key [bold]{key.key_id}[/bold] with scopes {','.join(sorted(key.scopes))}")
        typer.echo(secret)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List keys (ids, scopes, state), never the secrets."""
    from rich.table import Table

    from attune.events.timestamps import iso

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        table = Table("id", "name", "scopes", "created", "expires", "state")
        for key in runtime.keys.list():
            state = "revoked" if key.revoked_at else "active"
            table.add_row(
                key.key_id,
                key.name,
                ",".join(sorted(key.scopes)),
                iso(key.created_at),
                iso(key.expires_at) if key.expires_at else "never",
                state,
            )
        context.Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Revoke a key by id; it stops working at once."""
    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        runtime.keys.revoke(key_id)
        runtime.privacy.audit.append("cli", "key.revoke", key_id)
        console.print(f"revoked key {key_id}")


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="events, interactions, items or users")],
    path: Annotated[Path, typer.Argument(help="CSV, JSON Lines or Parquet file.", exists=True, dir_okay=False)],
    report: Annotated[Path | None, typer.Option(help="Write rejected rows (line, reasons) to this CSV.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import a file (CSV, JSON Lines or Parquet) with a progress bar; re-importing adds nothing."""
    from attune.importers import run_import

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        result = run_import(runtime, kind, path, report_path=report, progress=True)
        console.print(result.summary(), markup=False, highlight=False, soft_wrap=True)
        if result.rejected and report is None:
            console.print("rerun with --report FILE to save every rejected row")


@app.command()
def replay(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Delete all derived state (profiles, popularity, lake) and rebuild it from the event log."""
    import time

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        started = time.perf_counter()
        with console.status("replaying the event log…"):
            handled = runtime.pipeline.replay()
        console.print(
            f"replayed {runtime.log.count():,} events through {len(runtime.pipeline.runners)} consumers "
            f"({handled:,} deliveries) in {time.perf_counter() - started:.1f}s"
        )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A DuckDB SQL query over the lake.")],
    output: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    data_dir: DataDir = None,
) -> None:
    """Query the Parquet lake with DuckDB (views: events, daily_item_stats, daily_user_activity)."""
    from attune.lake.query import print_query

    with friendly_errors():
        print_query(settings_for(data_dir), query, output)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Directory to write the data set to.")] = Path("synthetic"),
    users: Annotated[int, typer.Option(help="Number of users.")] = 1000,
    items: Annotated[int, typer.Option(help="Number of items.")] = 500,
    days: Annotated[int, typer.Option(help="Days of activity.")] = 28,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 42,
) -> None:
    """Generate synthetic users, items and events with planted segments (deterministic by seed)."""
    from attune.synth import generate as make
    from attune.synth import write_dataset

    with friendly_errors(), console.status("generating…"):
        data = make(seed=seed, n_users=users, n_items=items, days=days)
        paths = write_dataset(data, out)
    for name, file in paths.items():
        console.print(f"{name:>14}: {file}")


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option("--data-dir", envvar="ATTUNE_DATA_DIR")] = Path("./attune-demo"),
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    users: Annotated[int, typer.Option(help="Synthetic users.")] = 2000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Prepare everything, then exit.")] = False,
) -> None:
    """Generate data, import it, build profiles and popularity, then serve and print what to try."""
    from attune.cli.demo import run_demo

    with friendly_errors():
        run_demo(data_dir, port=port, users=users, serve=not no_serve)


register_model_commands(app)

if __name__ == "__main__":  # pragma: no cover
    app()
