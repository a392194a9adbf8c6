"""`precoro-webhooks`: run the receiver, show the inbox, prune what the tap consumed.

    precoro-webhooks serve --inbox PATH [--host 127.0.0.1] [--port 8900] [limits...]
    precoro-webhooks status --inbox PATH [--state STATE.json]
    precoro-webhooks prune --inbox PATH (--upto POSITION | --state STATE.json)

The secret comes from `PRECORO_WEBHOOK_SECRET` (preferred: command lines are visible
to other users in `ps`) or `--secret`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from precoro_client.declared import Declared, declared, parse_value
from precoro_client.errors import ConfigError

from tap_precoro.webhooks.guard import ServerLimits
from tap_precoro.webhooks.inbox import InboxMissing, SqliteInbox
from tap_precoro.webhooks.receiver import ListenAddress, Receiver, ReceiverSettings

SECRET_ENV = "PRECORO_WEBHOOK_SECRET"


def consumed_position(state: Mapping[str, Any]) -> int | None:
    """Lowest inbox position any stream of a tap state has consumed (None if none).

    Accepts a Singer state (`{"bookmarks": ...}`) or Meltano's `{"singer_state": ...}`.
    """
    singer = state.get("singer_state", state)
    bookmarks = singer.get("bookmarks") if isinstance(singer, Mapping) else None
    positions = [
        int(stream["webhooks"]["position"])
        for stream in (bookmarks or {}).values()
        if isinstance(stream, Mapping)
        and isinstance(stream.get("webhooks"), Mapping)
        and "position" in stream["webhooks"]
    ]
    return min(positions) if positions else None


SERVE_SETTINGS: tuple[type[Any], ...] = (ListenAddress, ReceiverSettings, ServerLimits)
"""The settings classes whose declared fields are `serve` options (the secret aside)."""


def _option_type(name: str, declaration: Declared) -> Callable[[str], Any]:
    """An argparse type parsing `--<name>` as the declaration does (range included)."""

    def parse(text: str) -> Any:
        try:
            return parse_value(name, declaration, text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _add_declared_options(parser: argparse.ArgumentParser) -> None:
    """One option per declared setting, with its default, range and description."""
    for cls in SERVE_SETTINGS:
        for spec, declaration in declared(cls):
            if declaration.secret:  # from the environment, see `_serve`
                continue
            parser.add_argument(
                f"--{spec.name.replace('_', '-')}",
                type=_option_type(spec.name, declaration),
                default=spec.default,
                help=declaration.description,
            )


def _settings(cls: type[Any], args: argparse.Namespace, **given: Any) -> Any:
    """A settings class built from the parsed options of its declared fields."""
    values = {spec.name: getattr(args, spec.name) for spec, d in declared(cls) if not d.secret}
    return cls(**values, **given)


def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    del signum, frame
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    secret = os.environ.get(SECRET_ENV) or args.secret
    if not secret:
        print(f"error: set {SECRET_ENV} (or --secret)", file=sys.stderr)
        return 2
    try:
        address: ListenAddress = _settings(ListenAddress, args)
        settings: ReceiverSettings = _settings(ReceiverSettings, args, secret=secret)
        limits: ServerLimits = _settings(ServerLimits, args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    receiver = Receiver.open(
        args.inbox, settings, host=address.host, port=address.port, limits=limits
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(f"precoro-webhooks: listening on {receiver.url}/webhook (inbox {args.inbox})", flush=True)
    receiver.serve_forever()
    return 0


def _read_state(path: str) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        msg = f"{path} is not a JSON object"
        raise ValueError(msg)
    return data


def _stamp(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


def _status(args: argparse.Namespace) -> int:
    inbox = SqliteInbox(args.inbox)
    try:
        info = inbox.info()
        started = inbox.last_marker("started")
        stopped = inbox.last_marker("stopped")
        beat = inbox.last_marker("heartbeat")
        report: dict[str, Any] = {
            "inbox": str(args.inbox),
            "inbox_id": info.inbox_id,
            "head": info.head,
            "pruned_upto": info.pruned_upto,
            "depth": inbox.depth(),
            "last_started": _stamp(started.received_at if started else None),
            "last_stopped": _stamp(stopped.received_at if stopped else None),
            "last_heartbeat": _stamp(beat.received_at if beat else None),
        }
        if args.state:
            consumed = consumed_position(_read_state(args.state))
            report["consumed_upto"] = consumed
            report["pending"] = inbox.depth(consumed or 0)
    finally:
        inbox.close()
    print(json.dumps(report, indent=2))
    return 0


def _prune(args: argparse.Namespace) -> int:
    upto = args.upto
    if args.state:
        upto = consumed_position(_read_state(args.state))
        if upto is None:
            print("nothing to prune: the state has no webhook position", file=sys.stderr)
            return 0
    inbox = SqliteInbox(args.inbox)
    try:
        removed = inbox.prune(int(upto))
    finally:
        inbox.close()
    print(json.dumps({"pruned_upto": int(upto), "removed": removed}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Arguments of every subcommand."""
    parser = argparse.ArgumentParser(prog="precoro-webhooks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="receive Precoro webhooks into the inbox")
    serve.add_argument("--inbox", required=True, help="SQLite inbox file (created if missing)")
    serve.add_argument("--secret", help=f"shared secret; prefer the {SECRET_ENV} variable")
    _add_declared_options(serve)
    serve.add_argument("--log-level", default="INFO")

    status = sub.add_parser("status", help="show inbox depth, head and receiver liveness")
    status.add_argument("--inbox", required=True)
    status.add_argument("--state", help="tap state JSON: also show what is still pending")

    prune = sub.add_parser("prune", help="delete notifications the tap already consumed")
    prune.add_argument("--inbox", required=True)
    group = prune.add_mutually_exclusive_group(required=True)
    group.add_argument("--upto", type=int, help="delete entries at or below this position")
    group.add_argument("--state", help="tap state JSON: prune what every stream consumed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `precoro-webhooks` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handlers = {"serve": _serve, "status": _status, "prune": _prune}
    try:
        return handlers[args.command](args)
    except (InboxMissing, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
