"""``attune privacy export|erase|sweep|rekey|rotate-master-key`` and ``attune audit verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from attune.cli.context import DatabaseUrl, DataDir, console, friendly_errors, open_runtime

privacy_app = typer.Typer(help="Rights of the person, retention and keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@privacy_app.command("export")
def export(
    user_id: str,
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of standard output.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print everything held about USER as JSON."""
    from attune.privacy.rights import export_person

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        privacy = runtime.privacy
        runtime.catch_up()
        data = export_person(runtime, privacy, user_id, privacy.export_hooks)
        privacy.audit.append("cli", "person.export", privacy.subject_keys.user(user_id), {"events": len(data["events"])})
        text = json.dumps(data, indent=2, ensure_ascii=False)
        if out is None:
            typer.echo(text)
        else:
            out.write_text(text)
            console.print(f"wrote {out}")


@privacy_app.command("erase")
def erase(user_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Erase USER everywhere: log, profiles, consent, lake files, data keys."""

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        privacy = runtime.privacy
        runtime.catch_up()
        done = privacy.erasure.erase(user_id)
        privacy.audit.append("cli", "person.erase", "(erased)", {"records": done.counts})
        console.print(f"erased {user_id}: " + ", ".join(f"{k} {v}" for k, v in done.counts.items()))


@privacy_app.command("sweep")
def sweep(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply the retention periods set in the privacy section (retention_days)."""
    from attune.privacy.retention import sweep as run_sweep

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        report = run_sweep(runtime, runtime.privacy)
        console.print("swept: " + (", ".join(f"{k} {v}" for k, v in report.removed.items()) or "nothing configured"))


@privacy_app.command("rekey")
def rekey(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Add a new pseudonym key and move every stored subject to it (then run `attune replay` for the lake)."""
    from attune.privacy.keyring import add_key
    from attune.privacy.pseudonym import rekey as run_rekey

    with friendly_errors():
        with open_runtime(data_dir, database_url) as runtime:
            key_id = add_key(runtime.settings.data_dir, "pseudonym")
        with open_runtime(data_dir, database_url) as runtime:
            privacy = runtime.privacy
            if privacy.pseudonymizer is None:
                console.print("pseudonymization is off; the new key will be used when it is switched on")
                return
            moved = run_rekey(runtime.engine, privacy.pseudonymizer, privacy.registry)
            privacy.audit.append("cli", "key.pseudonym.rotate", key_id, {"moved": moved})
            console.print(f"new pseudonym key {key_id}; {moved} subjects moved")


@privacy_app.command("rotate-master-key")
def rotate_master_key(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Add a new master key to the keyring file and re-wrap every data key under it."""
    from attune.privacy.keyring import add_key

    with friendly_errors():
        with open_runtime(data_dir, database_url) as runtime:
            key_id = add_key(runtime.settings.data_dir, "master")
        with open_runtime(data_dir, database_url) as runtime:
            privacy = runtime.privacy
            count = privacy.person_keys.rotate_master()
            privacy.audit.append("cli", "key.master.rotate", key_id, {"rewrapped": count})
            console.print(f"new master key {key_id}; {count} data keys re-wrapped")


@audit_app.command("verify")
def verify(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Check the audit chain; exit 1 naming every edited or removed entry."""

    with friendly_errors(), open_runtime(data_dir, database_url) as runtime:
        result = runtime.privacy.audit.verify()
    if result.ok:
        console.print(f"audit log intact: {result.entries} entries")
        return
    console.print(f"[red]audit log tampered[/red]: {len(result.problems)} problem(s)")
    for problem in result.problems:
        console.print(f"  - {problem}")
    raise typer.Exit(1)
