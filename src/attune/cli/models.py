"""``attune train``, ``attune recommend``, ``attune evaluate`` and ``attune models …``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from attune.cli.context import DatabaseUrl, DataDir, console, friendly_errors, open_runtime
from attune.errors import ValidationFailed

models_app = typer.Typer(help="The registry of trained model versions.", no_args_is_help=True)


class _RichProgress:
    """Training progress on the console: one line per stage, one bar per tuned model."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, int] = {}

    def stage(self, message: str) -> None:
        """Print the step."""
        self.bars.console.print(f"[dim]•[/dim] {escape(message)}")

    def trial(self, model: str, done: int, total: int, score: float | None, best: float | None) -> None:
        """Advance ``model``'s bar and show its best validation NDCG@10."""
        if model not in self.tasks:
            self.tasks[model] = self.bars.add_task(model, total=total)
        best_text = "—" if best is None else f"{best:.4f}"
        self.bars.update(
            self.tasks[model],
            completed=done,
            total=max(total, done),
            description=f"{model:<8} best NDCG@10 {best_text}",
        )


@contextmanager
def _progress() -> Iterator[_RichProgress]:
    bars = Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with bars:
        yield _RichProgress(bars)


def _time(text: str | None, option: str) -> float | None:
    from attune.events.timestamps import parse_timestamp

    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise ValidationFailed(f"{option}: {exc}") from exc


def train(
    model: Annotated[
        str,
        typer.Option(
            help="auto (tune and pick) or one model: popular, trending, itemknn, ease, als, bpr, content, hybrid, rerank."
        ),
    ] = "auto",
    since: Annotated[
        str | None, typer.Option(help="Only interactions at or after this time (ISO 8601 or epoch).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only interactions before this time (ISO 8601 or epoch).")
    ] = None,
    promote: Annotated[
        bool, typer.Option(help="Promote the new version at once (serving switches to it).")
    ] = True,
    trials: Annotated[
        int | None, typer.Option(help="auto: Optuna trials per candidate model.", min=1)
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="auto: seconds for tuning the single models (ensembles follow).", min=1),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Fit, evaluate on the per-user temporal holdout, refit on all data and register the version."""
    from attune.training import catalog
    from attune.training.trainer import describe_params
    from attune.training.trainer import train as run_training

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        if trials is not None:
            runtime.settings.training.tune_trials = trials
        if timeout is not None:
            runtime.settings.training.tune_timeout_seconds = timeout
        runtime.catch_up()  # interactions reach the store through the profiles consumer
        with _progress() as progress:
            report = run_training(
                runtime.engine,
                runtime.settings,
                model,
                since=_time(since, "since"),
                until=_time(until, "until"),
                promote=promote,
                progress=progress,
            )
        for note in report.notes:
            console.print(f"[yellow]note:[/yellow] {escape(note)}")
        if report.choice is not None:
            table = Table("candidate", "validation NDCG@10", "trials", "seconds", "best hyper-parameters")
            for candidate in report.choice.candidates:
                value = (
                    "failed: " + (candidate.error or "")
                    if candidate.score is None
                    else f"{candidate.score:.4f}"
                )
                table.add_row(
                    candidate.name,
                    escape(value),
                    str(candidate.trials),
                    f"{candidate.seconds:.1f}",
                    escape(describe_params(candidate.params, catalog.defaults(candidate.name))),
                )
            console.print(table)
        metrics = report.test_metrics
        table = Table(
            f"held-out ({report.test_users:,} users)",
            *[f"@{k}" for k in (5, 10, 20) if f"ndcg@{k}" in metrics],
        )
        for name in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate"):
            table.add_row(
                name, *[f"{metrics[f'{name}@{k}']:.4f}" for k in (5, 10, 20) if f"{name}@{k}" in metrics]
            )
        console.print(table)
        state = "promoted" if report.promoted else "registered (not promoted)"
        console.print(
            f"{state} [bold]{report.version.version}[/bold]: {report.name} "
            f"({escape(describe_params(report.params, catalog.defaults(report.name)))}), "
            f"trained on {report.version.n_interactions:,} interactions in {report.seconds:.1f}s"
        )
        typer.echo(report.version.version)


def recommend(
    users: Annotated[Path, typer.Option("--users", help="File of user ids, one per line.")],
    out: Annotated[Path, typer.Option("--out", help="CSV to write: user_id,rank,item_id,score.")] = Path(
        "recs.csv"
    ),
    k: Annotated[int, typer.Option("-k", "--k", help="Items per user (1-1000).")] = 10,
    model: Annotated[
        str | None, typer.Option("--model", help="A registered version (default: the promoted one).")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Batch top-k for the user ids in a file, excluding items each user already interacted with."""
    from attune.training.batch import load_model, read_user_file, recommend_to_csv
    from attune.training.trainer import registry_for

    with friendly_errors():
        user_file = read_user_file(users)
        if not 1 <= k <= 1000:
            raise ValidationFailed(f"k: must be between 1 and 1000, got {k}")
        with open_runtime(data_dir, database_url) as runtime:
            runtime.catch_up()
            bundle = load_model(registry_for(runtime.engine, runtime.settings), model)
            summary = recommend_to_csv(runtime.engine, bundle, user_file, k, out, runtime.subject_keys)
        for line in summary.skipped[:20]:
            console.print(f"[yellow]skipped[/yellow] {escape(line)}")
        console.print(escape(summary.text()))


def evaluate(
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated versions (v3) or model names; default: the registered ones."),
    ] = None,
    split: Annotated[
        str, typer.Option(help="holdout (DESIGN.md), global (time cut) or kfold (user 5-fold).")
    ] = "holdout",
    k: Annotated[str, typer.Option("-k", "--k", help="Cut-offs, comma-separated.")] = "5,10,20",
    out: Annotated[Path, typer.Option(help="Directory for report.html and report.json.")] = Path(
        "attune-report"
    ),
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Offline report: every configuration fitted and scored on the same split (HTML with plots, and JSON)."""
    from attune.evaluation.compare import SPLITS
    from attune.evaluation.offline import parse_ks
    from attune.training.evaluate import evaluate_installation
    from attune.training.trainer import registry_for

    with friendly_errors():
        ks = parse_ks(k)
        if split not in SPLITS:
            raise ValidationFailed(f"split: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        tokens = [t.strip() for t in models.split(",") if t.strip()] if models else None
        with open_runtime(data_dir, database_url) as runtime:
            runtime.catch_up()
            with _progress() as progress:
                comparison, html_path, json_path = evaluate_installation(
                    runtime.engine,
                    runtime.settings,
                    registry_for(runtime.engine, runtime.settings),
                    tokens,
                    split,
                    ks,
                    out,
                    progress,
                )
        k_show = 10 if 10 in ks else ks[-1]
        table = Table("model", f"Recall@{k_show}", f"NDCG@{k_show}", f"MAP@{k_show}", "coverage", "novelty")
        for result in comparison.results:
            if result.error:
                table.add_row(escape(result.label), f"[red]{escape(result.error)}[/red]", "", "", "", "")
                continue
            beyond = result.beyond[str(k_show)]
            table.add_row(
                escape(result.label),
                f"{result.metrics[f'recall@{k_show}']:.4f}",
                f"{result.metrics[f'ndcg@{k_show}']:.4f}",
                f"{result.metrics[f'map@{k_show}']:.4f}",
                f"{beyond['coverage']:.3f}",
                "—" if beyond["novelty"] is None else f"{beyond['novelty']:.2f}",
            )
        console.print(table)
        console.print(f"report: {html_path}\nfigures: {json_path}")


@models_app.command("list")
def models_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Registered versions, newest first, with held-out NDCG@10 and status."""
    from attune.events.timestamps import iso
    from attune.training import catalog
    from attune.training.trainer import describe_params, registry_for

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        versions = registry_for(runtime.engine, runtime.settings).list()
        if not versions:
            console.print("no model versions yet: run `attune train`")
            return
        table = Table("version", "status", "model", "params", "interactions", "NDCG@10", "created (UTC)")
        for entry in versions:
            ndcg = entry.metrics.get("ndcg@10")
            table.add_row(
                entry.version,
                f"[bold green]{entry.status}[/bold green]" if entry.status == "promoted" else entry.status,
                entry.name,
                escape(describe_params(entry.params, catalog.defaults(entry.name))),
                f"{entry.n_interactions:,}",
                "—" if ndcg is None else f"{ndcg:.4f}",
                iso(entry.created_at)[:16].replace("T", " "),
            )
        console.print(table)


@models_app.command("promote")
def models_promote(version: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Make VERSION the model serving uses."""
    from attune.training.trainer import registry_for

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        entry = registry_for(runtime.engine, runtime.settings).promote(version, actor="cli")
        console.print(f"promoted {entry.version} ({entry.name})")


@models_app.command("rollback")
def models_rollback(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Promote again the version that was promoted before the current one."""
    from attune.training.trainer import registry_for

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        entry = registry_for(runtime.engine, runtime.settings).rollback(actor="cli")
        console.print(f"rolled back to {entry.version} ({entry.name})")


def register(app: typer.Typer) -> None:
    """Add these commands to the ``attune`` app."""
    app.command()(train)
    app.command()(recommend)
    app.command()(evaluate)
    app.add_typer(models_app, name="models")
