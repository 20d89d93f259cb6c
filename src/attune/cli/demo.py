"""``attune demo``: the whole path on the embedded store, ready in well under two minutes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from attune.auth.keys import parse_scopes
from attune.cli.context import console
from attune.errors import ConfigError
from attune.runtime import Runtime
from attune.settings import load_settings

MARKER = ".attune-demo"


def run_demo(data_dir: Path, *, port: int, users: int, serve: bool) -> dict[str, str]:
    """Generate, import, derive, create keys; then serve (unless ``serve`` is false).

    The demo directory is rebuilt on each run; a directory that was not made by the demo is
    never deleted. Returns the keys and a known user id (for tests and scripts).
    """
    from attune.importers import run_import
    from attune.synth import generate, write_dataset

    started = time.perf_counter()
    _fresh_directory(data_dir)
    with console.status("generating synthetic users, items and four weeks of sessions…"):
        data = generate(seed=42, n_users=users, n_items=max(200, users // 4), days=28, end=_today())
        files = write_dataset(data, data_dir / "synthetic")
    console.print(f"generated data in {data_dir / 'synthetic'}")

    settings = load_settings(data_dir=data_dir)
    runtime = Runtime.open(settings)
    try:
        for kind, name in (("items", "items.csv"), ("users", "users.csv"), ("events", "events.jsonl")):
            result = run_import(runtime, kind, data_dir / "synthetic" / name, progress=True)
            console.print(f"  {kind:>6}: {result.summary()}")
        admin = runtime.keys.create(parse_scopes("admin"), name="demo admin")[1]
        reader = runtime.keys.create(parse_scopes("read"), name="demo read")[1]
        writer = runtime.keys.create(parse_scopes("ingest"), name="demo browser write key")[1]
        user_id = _active_user(runtime)
    finally:
        runtime.close()
    elapsed = time.perf_counter() - started
    base = f"http://127.0.0.1:{port}"
    lines = [
        f"Attune demo ready in {elapsed:.0f}s  (data: {data_dir.resolve()})",
        "",
        f"API docs     {base}/docs",
        f"health       {base}/readyz",
        f"metrics      {base}/metrics",
        "",
        f"admin key    {admin}",
        f"read key     {reader}",
        f"write key    {writer}   (ingest only: safe in a web page)",
        "",
        "try:",
        f"  curl -H 'Authorization: Bearer {reader}' '{base}/v1/users/{user_id}/recommendations?k=5'",
        f"  curl -H 'Authorization: Bearer {reader}' {base}/v1/users/{user_id}/profile",
        f"  curl -H 'Authorization: Bearer {writer}' -H 'Content-Type: application/json' "
        f"-d '{{\"events\":[{{\"type\":\"view\",\"user_id\":\"{user_id}\",\"item_id\":\"i00001\"}}]}}' "
        f"{base}/v1/events",
        f"  attune sql --data-dir {data_dir} \"SELECT * FROM daily_item_stats ORDER BY views DESC LIMIT 5\"",
        "",
    ]
    out = Console(soft_wrap=True, highlight=False)
    out.print(Rule("attune demo"))
    for line in lines:
        out.print(line, markup=False)
    if serve:
        from attune.cli.serving import serve as run_server

        run_server(settings, host="127.0.0.1", port=port)
    return {"admin": admin, "read": reader, "ingest": writer, "user_id": user_id, "files": str(files)}


def _fresh_directory(data_dir: Path) -> None:
    if data_dir.exists():
        if not (data_dir / MARKER).exists() and any(data_dir.iterdir()):
            raise ConfigError(
                f"{data_dir} exists and was not made by the demo; choose another --data-dir"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("made by `attune demo`; rebuilt on each run\n")


def _today():
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0)


def _active_user(runtime: Runtime) -> str:
    """A user with plenty of history, to make the printed examples interesting."""
    from sqlalchemy import func, select

    from attune.storage.tables import interactions

    with runtime.engine.connect() as conn:
        key = conn.execute(
            select(interactions.c.user_key)
            .where(interactions.c.user_key.like("u:%"))
            .group_by(interactions.c.user_key)
            .order_by(func.count().desc())
            .limit(1)
        ).scalar()
    return runtime.subject_keys.display_id(key) if key else "u00001"
