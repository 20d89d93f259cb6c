"""``attune segments``: apply definitions, list, re-evaluate, report conflicts, learn clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from attune.cli.context import DatabaseUrl, DataDir, console, friendly_errors, open_runtime

app = typer.Typer(help="Segment definitions and memberships.", no_args_is_help=True)


@app.command("apply")
def apply(
    file: Annotated[
        Path, typer.Argument(help="YAML or JSON: a list of segments with `name`, or name -> spec.")
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create or replace the segments in FILE (validated as a set) and re-evaluate everyone."""
    from attune.segments.definitions import load_definitions
    from attune.segments.engine import _spec_of

    with friendly_errors():
        definitions = load_definitions(file)
        with open_runtime(data_dir, database_url) as runtime:
            runtime.catch_up()
            versions = runtime.segments.apply_definitions({d.name: _spec_of(d) for d in definitions})
            for name, version in sorted(versions.items()):
                console.print(f"{name}: version {version}, {runtime.segments.size(name)} members")
            typer.echo(f"applied {len(versions)} segments")


@app.command("list")
def list_(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List segments: rule, group, priority, version and current size."""
    from rich.table import Table

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        engine = runtime.segments
        table = Table("name", "kind", "rule", "group", "priority", "purpose", "version", "members")
        for name, definition in sorted(engine.definitions().items()):
            stored = engine.stored(name)
            table.add_row(
                name,
                definition.kind,
                definition.rule.text if definition.rule is not None else "",
                definition.group or "",
                str(definition.priority),
                definition.purpose or "",
                str(stored.version),
                str(engine.size(name)),
            )
        console.print(table)


@app.command("evaluate")
def evaluate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Recompute every membership from the log (offline features, vectorized), with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        runtime.catch_up()  # the lake holds every event before features are computed from it
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=max(total, 1))
                bar.update(tasks[stage], completed=done, total=max(total, 1))

            totals = runtime.segments.evaluate_all(progress)
        typer.echo(
            f"evaluated {totals['people']} people: {totals['entered']} entries, "
            f"{totals['exited']} exits, {totals['updated']} confidence updates"
        )


@app.command("conflicts")
def conflicts(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """The conflict report: equal priorities in one group, rules that never or always match."""
    from attune.segments.conflicts import conflict_report

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        report = conflict_report(runtime.segments.definitions())
        for conflict in report:
            typer.echo(f"{conflict.kind}: {', '.join(conflict.segments)}: {conflict.message}")
        if not report:
            typer.echo("no conflicts")


@app.command("learn")
def learn(
    method: Annotated[str, typer.Option(help="kmeans, dbscan or gmm.")] = "gmm",
    k: Annotated[int | None, typer.Option(help="Number of clusters (default: chosen by silhouette).")] = None,
    prefix: Annotated[str, typer.Option(help="Name prefix of the learnt segments.")] = "cluster",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Cluster people by their features and store the clusters as learnt segments."""
    from attune.segments.learning import learn_and_store

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        runtime.catch_up()  # the lake holds every event before features are computed from it
        outcome = learn_and_store(runtime, method=method, k=k, prefix=prefix)
        for name, spec in sorted(outcome.specs.items()):
            console.print(f"{name}: {runtime.segments.size(name)} members  {spec.get('description', '')}")
        silhouette = outcome.clustering.silhouette
        typer.echo(f"learnt {len(outcome.specs)} segments ({method}, silhouette {silhouette:.2f})")
