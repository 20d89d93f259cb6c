"""Run ``attune serve`` as a child process for benchmarks: temp data dir, free port, optional PostgreSQL.

The server is a separate process from the load generator, so the figures measure the
server, not a client sharing its interpreter.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Self

import httpx

ROOT = Path(__file__).resolve().parents[1]
ATTUNE = str(Path(sys.executable).with_name("attune"))
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    """A TCP port on the loopback interface nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_memory(pid: int) -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of ``pid`` in bytes, from /proc."""
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
    return out


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (ingest workers, the multiprocessing resource tracker)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
        except FileNotFoundError:
            continue
    return out


def tree_total(pid: int, measure) -> float | dict[str, int]:  # noqa: ANN001 - one of the proc_* readers
    """``measure`` summed over ``pid``'s process tree (processes that exit meanwhile are skipped)."""
    total = None
    for member in proc_tree(pid):
        try:
            value = measure(member)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if isinstance(value, dict):
            total = total or {}
            for key, amount in value.items():
                total[key] = total.get(key, 0) + amount
        else:
            total = (total or 0.0) + value
    return total if total is not None else 0.0


class BenchServer:
    """One throw-away Attune installation served on a free port.

    Use as a context manager; the data directory (and the PostgreSQL database, for that
    backend) is removed on exit.
    """

    def __init__(self, backend: str, env: dict[str, str] | None = None, serve_args: list[str] | None = None) -> None:
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"backend must be sqlite or postgresql, not {backend!r}")
        self.backend = backend
        self.env = {**os.environ, **(env or {})}
        #: Extra ``attune serve`` options (``--ingest-workers 2``).
        self.serve_args = serve_args or []
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"attune-bench-{backend}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = f"attune_bench_{uuid.uuid4().hex[:10]}" if backend == "postgresql" else None
        self.key = ""
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int:
        """Process id of the server."""
        assert self.proc is not None
        return self.proc.pid

    def _db_args(self) -> list[str]:
        if self.database is None:
            return []
        return ["--database-url", f"postgresql://postgres@127.0.0.1:5432/{self.database}"]

    def _pg(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(statement)

    def __enter__(self) -> Self:
        try:
            if self.database:
                self._pg(f'CREATE DATABASE "{self.database}"')
            init = subprocess.run(
                [ATTUNE, "init", "--data-dir", str(self.data_dir), *self._db_args()],
                capture_output=True,
                text=True,
                env=self.env,
                check=False,
            )
            if init.returncode != 0:
                raise RuntimeError(f"attune init failed:\n{init.stdout}\n{init.stderr}")
            self.key = init.stdout.strip().splitlines()[-1]
            self._log = open(self.data_dir / "server.log", "wb")
            self.proc = subprocess.Popen(
                [
                    ATTUNE,
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    *self._db_args(),
                    *self.serve_args,
                ],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
            self._wait_healthy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not become healthy in {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server wrote."""
        path = self.data_dir / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server and its ingest workers have used so far."""
        return tree_total(self.pid, proc_cpu_seconds)

    def memory(self) -> dict[str, int]:
        """Current RSS of the server and its ingest workers together, and the sum of their peaks."""
        return tree_total(self.pid, proc_memory)

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.database:
            self._pg(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
