"""Reading the Singer input: numbered lines, each a message or a rejected line.

A line the target cannot use (not JSON, not UTF-8, too long, too deep, an unknown
message type) is handed to `on_bad_line` with its number and reason and kept aside;
it never ends the run. A SIGTERM/SIGINT ends the read between lines.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, Any

from singer_sdk.exceptions import InvalidInputLine
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.json import deserialize_json
from typing_extensions import override

from target_precoro.writable import UnknownStreamError

MAX_LINE_CHARS = 5_000_000
"""Longest input line read (characters); a longer one is rejected unread, not loaded.
Precoro master-data records are a few kB; this leaves three orders of magnitude."""
MAX_NESTING = 100
"""Deepest nesting of objects and lists accepted in one message (records need < 10);
deeper input is rejected before any recursive code (copy, encoding) can overflow."""


class ReadInterrupted(Exception):
    """Raised by the signal handler, only while the reader waits for the next line."""


class BadLine(Exception):
    """An input line the target cannot use; the reason goes to `rejected-lines.jsonl`."""


def _decoded(source: IO[str]) -> IO[str]:
    """The same input, decoded as UTF-8 keeping invalid bytes (as lone surrogates).

    A strict decoder raises in the middle of the input and ends the run; with
    `surrogateescape` the bad line is read, found invalid and rejected by number.
    """
    buffer = getattr(source, "buffer", None)
    if buffer is None:
        return source
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="surrogateescape")


def _bounded_lines(source: IO[str], limit: int) -> Iterator[tuple[str, bool]]:
    """Lines of at most `limit` characters; a longer one is skipped, yielding (head, True)."""
    while True:
        line = source.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit:
            yield line, False
            continue
        head = line
        while not line.endswith("\n"):
            line = source.readline(limit)
            if not line:
                break
        yield head[:200], True


def _value_problem(message: dict[str, Any], line: str) -> str | None:
    """Why a parsed message cannot be used: too deep, or a string that is not Unicode."""
    deep = line.count("{") + line.count("[") > MAX_NESTING
    escapes = "\\u" in line
    if not deep and not escapes:
        return None
    stack: list[tuple[Any, int]] = [(message, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_NESTING:
                return f"nested deeper than {MAX_NESTING} levels"
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return (
                    f"a string holds a lone surrogate ({value[exc.start]!r}), which is not "
                    "valid Unicode"
                )
    return None


def parse_line(line: str) -> dict[str, Any]:
    """One Singer message from one line, or `BadLine` saying why not."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadLine(f"invalid UTF-8 at character {exc.start}") from None
    try:
        message = deserialize_json(line)
    except RecursionError:
        raise BadLine("nested too deeply to parse") from None
    except ValueError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadLine(f"not a Singer message: a JSON {type(message).__name__}, not an object")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise BadLine("a Singer message needs a 'type' string")
    problem = _value_problem(message, line)
    if problem is not None:
        raise BadLine(problem)
    return message


class LineNumberReader(SingerReader):
    """Reads Singer lines, counting them; a line it cannot use is kept, not fatal."""

    def __init__(self) -> None:
        """Start at line 0; the callbacks are set by the target."""
        super().__init__()
        self.line_number = 0
        self.on_bad_line: Callable[[int, str, str], None] | None = None
        self.on_failure: Callable[[Exception], None] | None = None
        self.on_start: Callable[[], None] | None = None
        """Called once before the first line is read (the run's start)."""
        self.stop_requested = False
        """Set by the signal handler: take no further line."""
        self.waiting = False
        """True only while blocked reading the next line (a signal may then break out)."""

    @override
    def process_lines(  # type: ignore[override]
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict[str, Any]], None]]
    ) -> Any:
        """Like the SDK's loop, but numbering lines and rejecting bad ones one by one.

        It stops between lines on a signal, and hands any unexpected error to the
        last-resort handler, which writes the report before exiting.
        """
        stats: Counter[str] = Counter()
        if self.on_start is not None:
            self.on_start()
        source = file_input or self.default_input
        decoded = _decoded(source)
        try:
            lines = _bounded_lines(decoded, MAX_LINE_CHARS)
            while not self.stop_requested:
                try:
                    try:
                        self.waiting = True
                        if self.stop_requested:
                            break
                        line, oversize = next(lines)
                    finally:
                        self.waiting = False
                except (StopIteration, ReadInterrupted):
                    break
                self.line_number += 1
                kind = self._process_line(line, oversize=oversize, callbacks=callbacks)
                if kind is not None:
                    stats[kind] += 1
        except Exception as exc:
            if self.on_failure is None:
                raise
            self.on_failure(exc)
        finally:
            if isinstance(decoded, io.TextIOWrapper) and decoded is not source:
                # Taken off, not closed: closing (or garbage-collecting) the layer would
                # close the caller's stream (stdin) under it.
                with contextlib.suppress(ValueError):
                    decoded.detach()
        return stats

    def _process_line(
        self,
        line: str,
        *,
        oversize: bool,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
    ) -> str | None:
        """Hand one line to its callback; a line the target cannot use is rejected."""
        try:
            if oversize:
                raise BadLine(f"longer than {MAX_LINE_CHARS} characters (MAX_LINE_CHARS)")
            if not line.strip():
                return None
            message = parse_line(line)
            kind = str(message["type"])
            callback = callbacks.get(kind)
            if callback is None:
                raise BadLine(f"unknown Singer message type {kind!r}")
            try:
                callback(message)
            except UnknownStreamError:
                raise
            except Exception as exc:
                text = str(exc).split("\n", 1)[0]
                raise BadLine(f"{type(exc).__name__}: {text}") from exc
        except BadLine as exc:
            if self.on_bad_line is None:
                raise InvalidInputLine(str(exc)) from exc
            self.on_bad_line(self.line_number, line, str(exc)[:500])
            return None
        return kind
