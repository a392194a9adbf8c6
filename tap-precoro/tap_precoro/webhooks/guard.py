"""Waitress, hardened against slow and idle clients on the open internet.

Waitress reads requests on its I/O thread, so a slow client never holds a worker; but
with its defaults a handful of sockets still shut everyone else out:

- it stops accepting once 100 connections are open (`connection_limit`), and a
  genuine delivery then waits in the kernel's backlog behind the attacker's sockets;
- it closes a connection only after `channel_timeout` seconds *without any byte*,
  checked every `cleanup_interval` (30 s), so one byte every few seconds keeps a
  socket open for ever, and headers may grow to 256 KiB meanwhile.

`GuardedServer` keeps waitress's parser and workers and changes only the connection
policy (`ServerLimits`):

- **A deadline per request**: the request line, headers and body must all arrive
  within `request_timeout_seconds` of the request's first byte (of the accept, for a
  connection's first request), however the bytes trickle; a keep-alive connection
  waiting for its next request is closed after `idle_timeout_seconds`, and one whose
  client reads nothing of a pending response for `request_timeout_seconds` too.
  Checked every second.
- **Room for genuine clients when full**: at `connection_limit` the server does not
  stop accepting; it closes the connection that has waited longest without
  completing a request (never one whose request is being served). An attacker then
  needs `connection_limit` new connections within the few milliseconds a genuine
  delivery takes to arrive, instead of 100 idle sockets.
- `poll()` instead of `select()` (no 1,024-descriptor ceiling), headers capped at
  8 KiB, and the process's descriptor limit raised to fit `connection_limit` (or a
  clear error naming the setting).

Per-address limits, TLS and rate limits belong to the reverse proxy in front
(docs/webhooks-receiver.md): behind it every connection comes from one address.
"""

from __future__ import annotations

import heapq
import logging
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from precoro_client.declared import integer, parse_numbers
from typing_extensions import override
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

logger = logging.getLogger("tap_precoro.webhooks")

MAX_HEADER_BYTES = 8192
"""Request line plus headers: a delivery needs a few hundred bytes (waitress: 256 KiB)."""
CHECK_INTERVAL = 1
"""Seconds between deadline checks (waitress's `cleanup_interval`)."""
LINGER_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on with 0 s: close() resets the connection and drops unsent output."""
DESCRIPTOR_MARGIN = 64
"""File descriptors kept free beyond one per connection (inbox, listen socket, logs)."""


@dataclass(frozen=True)
class ServerLimits:
    """How many connections the receiver holds and how long each may take.

    Each field is the setting's one declaration (`precoro_client.declared`): the
    `precoro-webhooks serve` options, their defaults and ranges are derived from it.
    """

    connection_limit: int = integer(
        1000,
        minimum=10,
        maximum=100_000,
        description="Open connections at most; when full, the longest-waiting unfinished one "
        "is closed to let a new one in.",
    )
    request_timeout_seconds: int = integer(
        10,  # a notification is ~60 bytes; any real sender delivers it in well under 1 s
        minimum=1,
        maximum=3600,
        description="Seconds a request (line, headers, body) may take to arrive, however "
        "it trickles.",
    )
    idle_timeout_seconds: int = integer(
        30,
        minimum=1,
        maximum=3600,
        description="Seconds a keep-alive connection may wait for its next request.",
    )
    threads: int = integer(
        8,
        minimum=1,
        maximum=64,
        description="Worker threads running the app (authentication, validation, inbox "
        "append); they only run complete requests, so slow clients hold none.",
    )

    def __post_init__(self) -> None:
        """Parse and range-check every field with the shared number parser."""
        parse_numbers(self)


@dataclass
class GuardStats:
    """What the guard did, for /health, tests and the benchmark."""

    timed_out: int = 0
    """Connections closed because their request did not arrive in time."""
    idle_closed: int = 0
    """Keep-alive connections closed after `idle_timeout_seconds`."""
    write_stalled: int = 0
    """Connections closed because the client read none of its response for that long."""
    evicted: int = 0
    """Unfinished connections closed to make room at `connection_limit`."""
    refused_full: int = 0
    """Times the server paused accepting because every connection was being served."""

    def as_dict(self) -> dict[str, int]:
        """The counters as a JSON-ready mapping."""
        return {
            "timed_out": self.timed_out,
            "idle_closed": self.idle_closed,
            "write_stalled": self.write_stalled,
            "evicted": self.evicted,
            "refused_full": self.refused_full,
        }


class GuardedChannel(HTTPChannel):  # type: ignore[misc]
    """A waitress channel that remembers when its current request began."""

    def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
        """As waitress's channel; the first request's clock starts at the accept."""
        super().__init__(server, sock, addr, adj, map)
        self.request_started: float = self.creation_time
        self.completed_any = False

    @override
    def received(self, data: bytes) -> bool:
        """Parse as waitress does; start a request's clock at its first byte."""
        before = self.request
        result: bool = super().received(data)
        after = self.request
        if not data:
            return result
        if after is None:  # every request in `data` is complete
            self.completed_any = True
        elif after is not before:  # a new request began in `data`
            if before is not None:
                self.completed_any = True
            if self.completed_any:  # a connection's first request counts from the accept
                self.request_started = time.time()
        return result

    def serving(self) -> bool:
        """A request of this channel is queued or running (or it is being closed)."""
        return bool(self.requests or self.will_close)

    def writing(self) -> bool:
        """Nothing in service, but a response is still waiting for the client to read it."""
        return bool(self.total_outbufs_len or self.close_when_flushed)

    def doom(self) -> None:
        """Close this connection at the loop's next turn, even if it cannot be written.

        `will_close` alone closes only once the socket is writable, which a client
        that reads nothing never lets happen; shutting the socket down makes poll()
        report a hang-up, so waitress closes it in its normal path (the descriptor
        stays open until then, so it cannot be reused under the loop). Linger 0 drops
        the unread output with a reset instead of keeping it queued in the kernel.
        """
        self.will_close = True
        if self.writing():
            try:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                self.socket.shutdown(socket.SHUT_RDWR)
            except OSError:  # already gone: waitress sees that too
                pass

    def reading(self) -> bool:
        """Part of a request arrived, or the connection never completed one."""
        return self.request is not None or not self.completed_any

    def waiting_since(self) -> float:
        """Since when this connection has made no useful progress."""
        if self.reading() and not self.writing():
            return self.request_started
        return float(self.last_activity)  # the last byte received or sent


class GuardedServer(TcpWSGIServer):  # type: ignore[misc]
    """A waitress TCP server with per-request deadlines and eviction when full."""

    channel_class = GuardedChannel
    next_channel_cleanup: float = 0.0

    def __init__(self, *args: Any, limits: ServerLimits, stats: GuardStats, **kwargs: Any) -> None:
        """As waitress's server, plus the limits to enforce and where to count."""
        self.limits = limits
        self.stats = stats
        self._full_logged = False
        self._stop_requested = False
        super().__init__(*args, **kwargs)

    def request_stop(self) -> None:
        """Ask the serving loop to end; safe from any thread, `run()` then returns.

        The loop thread itself ends the loop (see `readable`): closing sockets from
        another thread while it polls them would race with it.
        """
        self._stop_requested = True
        self.pull_trigger()  # wake the loop from its poll at once

    def close_all(self) -> None:
        """Once the loop has stopped: end the workers, close every connection and socket."""
        self.task_dispatcher.shutdown()
        for channel in list(self.active_channels.values()):
            channel.handle_close()
        self.close()  # the listening socket and the wake-up pipe

    @override
    def maintenance(self, now: float) -> None:
        """Close connections whose request is too slow, or that idled too long."""
        request_cutoff = now - self.limits.request_timeout_seconds
        idle_cutoff = now - self.limits.idle_timeout_seconds
        for channel in list(self.active_channels.values()):
            if not isinstance(channel, GuardedChannel) or channel.serving():
                continue
            if channel.writing():  # a client that does not read its responses
                if channel.last_activity < request_cutoff:
                    channel.doom()
                    self.stats.write_stalled += 1
            elif channel.reading():
                if channel.request_started < request_cutoff:
                    channel.will_close = True
                    self.stats.timed_out += 1
            elif channel.last_activity < idle_cutoff:
                channel.will_close = True
                self.stats.idle_closed += 1

    @override
    def readable(self) -> bool:
        """Accept unless full; when full, first close the longest-waiting unfinished one.

        Called by the loop before each poll, so it is where a stop request ends the
        loop: waitress's `run()` returns on SystemExit, as on Ctrl-C.
        """
        if self._stop_requested:
            raise SystemExit
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + CHECK_INTERVAL
            self.maintenance(now)
        if not self.accepting:
            return False
        channels = self.active_channels
        if len(channels) >= self.limits.connection_limit and not self._make_room(channels):
            if not self._full_logged:
                self._full_logged = True
                self.stats.refused_full += 1
                logger.warning(
                    "all %d connections are being served; new ones wait (connection_limit)",
                    self.limits.connection_limit,
                )
            return False
        self._full_logged = False
        return True

    def _make_room(self, channels: dict[int, Any]) -> bool:
        """Close the longest-waiting unserved connections so one more fits.

        False when every open connection is being served (nothing may be closed).
        """
        live = [c for c in channels.values() if not c.will_close]
        excess = len(live) - self.limits.connection_limit + 1
        if excess <= 0:
            return True
        idle = [c for c in live if isinstance(c, GuardedChannel) and not c.serving()]
        victims = heapq.nsmallest(excess, idle, key=GuardedChannel.waiting_since)
        for victim in victims:
            victim.doom()
        self.stats.evicted += len(victims)
        return len(victims) == excess


def _raise_descriptor_limit(limits: ServerLimits, listeners: int) -> None:
    """Make sure the process may open a descriptor for every connection, with a margin."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows has no such limit
        return
    needed = limits.connection_limit * listeners + limits.threads + DESCRIPTOR_MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        msg = (
            f"connection_limit {limits.connection_limit} needs {needed} file descriptors but "
            f"this process may open at most {hard} (ulimit -Hn); lower --connection-limit "
            "or raise the limit (systemd: LimitNOFILE=)"
        )
        raise ValueError(msg)
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def create_guarded_server(
    app: Any, *, limits: ServerLimits, stats: GuardStats, **adjustments: Any
) -> GuardedServer:
    """Like `waitress.create_server` for one TCP address, with `GuardedServer`."""
    adj = Adjustments(
        threads=limits.threads,
        connection_limit=limits.connection_limit,
        channel_timeout=limits.idle_timeout_seconds,
        cleanup_interval=CHECK_INTERVAL,
        max_request_header_size=MAX_HEADER_BYTES,
        asyncore_use_poll=True,
        **adjustments,
    )
    if len(adj.listen) != 1:
        where = [f"{host}:{port}" for _, _, _, (host, port, *_) in adj.listen]
        msg = f"the receiver listens on one address; {adjustments.get('host')!r} gives {where}"
        raise ValueError(msg)
    _raise_descriptor_limit(limits, 1)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    try:
        return GuardedServer(
            app,
            {},
            dispatcher=dispatcher,
            adj=adj,
            sockinfo=adj.listen[0],
            limits=limits,
            stats=stats,
        )
    except BaseException:  # e.g. the port is taken: no worker thread may outlive it
        dispatcher.shutdown()
        raise
