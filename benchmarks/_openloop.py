"""A lean open-loop HTTP/1.1 load generator on asyncio streams, for latency measurement.

Why not httpx here: its per-request overhead, in the same 2-core machine as the server,
made the client the bottleneck of an open-loop schedule at 200 requests/s (measured against
``/healthz``: p99 55 ms with send delays of 14 ms, versus about 1 ms with this client). The
requests are fixed, pre-serialized byte strings on keep-alive connections, and responses
from uvicorn always carry ``Content-Length``, so a request is one ``write`` and two reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class OpenLoopResult:
    """Per-request outcomes of one open-loop run (latencies in seconds)."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    #: Each successful request's scheduled send time (``time.perf_counter()``), parallel to
    #: ``latencies``: request ``i`` was in flight from ``scheduled[i]`` to
    #: ``scheduled[i] + latencies[i]``.
    scheduled: list[float] = field(default_factory=list)
    #: How late each request left the client compared to its schedule (client health).
    send_lag: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)


#: uvicorn closes keep-alive connections idle for 5 s; older idle connections are not reused.
_IDLE_LIMIT = 4.0


class _Pool:
    """Idle keep-alive connections to one host; opens another when none is fit to reuse."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def get(self, fresh: bool = False) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle and not fresh:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < _IDLE_LIMIT:
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    def put(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.idle.append((reader, writer, time.monotonic()))

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def _exchange(pool: _Pool, payload: bytes) -> tuple[int, bytes]:
    """Send one request; return the status code and the body.

    Should the server still close a pooled connection just as it is reused, the request
    fails before any byte of an answer; it is then sent once more on a new connection, as
    HTTP clients do.
    """
    for fresh in (False, True):
        reader, writer = await pool.get(fresh)
        try:
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            if not fresh and (isinstance(exc, ConnectionError) or not exc.partial):
                continue
            raise
        try:
            status = int(head[9:12])
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                    break
            if length is None:
                raise ValueError("response without Content-Length")
            body = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        pool.put(reader, writer)
        return status, body
    raise AssertionError("unreachable")


def pct(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` (seconds) in milliseconds (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000


def request_bytes(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """A complete HTTP/1.1 request as bytes."""
    host = urlsplit(url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _run(
    url: str,
    next_request: Callable[[], bytes],
    check: Callable[[int, bytes], bool],
    rate: float,
    seconds: float,
    warm_connections: int,
) -> OpenLoopResult:
    parts = urlsplit(url)
    pool = _Pool(parts.hostname or "127.0.0.1", parts.port or 80)
    result = OpenLoopResult()
    # Open the connections before the clock starts: set-up is not request latency.
    for reader, writer in await asyncio.gather(*(pool.get() for _ in range(warm_connections))):
        pool.put(reader, writer)

    async def one(scheduled: float, payload: bytes) -> None:
        result.send_lag.append(time.perf_counter() - scheduled)
        try:
            status, body = await _exchange(pool, payload)
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            result.errors += 1
            result.error_samples.append(repr(exc)[:200])
            return
        latency = time.perf_counter() - scheduled
        if check(status, body):
            result.ok += 1
            result.latencies.append(latency)
            result.scheduled.append(scheduled)
        else:
            result.errors += 1
            result.error_samples.append(f"{status}: {body[:200]!r}")

    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        payload = next_request()
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, payload)))
        result.sent += 1
    await asyncio.gather(*tasks)
    pool.close()
    return result


def open_loop(
    url: str,
    next_request: Callable[[], bytes],
    check: Callable[[int, bytes], bool],
    *,
    rate: float,
    seconds: float,
    warm_connections: int = 16,
) -> OpenLoopResult:
    """Send ``next_request()`` at ``rate`` per second for ``seconds``, never waiting for answers.

    Latency is measured from each request's scheduled time, so a server that stalls cannot
    hide behind a client that waits for it (no coordinated omission).
    """
    coro = _run(url, next_request, check, rate, seconds, warm_connections)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
