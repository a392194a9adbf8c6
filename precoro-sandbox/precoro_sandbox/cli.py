"""`precoro-sandbox serve ...`: run the emulator from a shell."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from precoro_sandbox.options import (
    DATE_STYLES,
    FULLY_PAID_ERRORS,
    MODIFIED_SINCE,
    ORDERS,
    PAGINATIONS,
    UNKNOWN_FILTERS,
    SandboxOptions,
)
from precoro_sandbox.server import SandboxServer


def _counts(values: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        name, _, number = value.partition("=")
        counts[name.strip()] = int(number)
    return counts


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments (every SandboxOptions knob)."""
    parser = argparse.ArgumentParser(prog="precoro-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the emulated Precoro API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8800)
    serve.add_argument("--seed", type=int, default=42)
    serve.add_argument("--scale", type=int, default=1000, help="suppliers per company")
    serve.add_argument(
        "--count", action="append", default=[], metavar="COLLECTION=N",
        help="override one collection's record count (repeatable)",
    )  # fmt: skip
    serve.add_argument("--companies", type=int, default=1)
    serve.add_argument("--token", default="sandbox-token")
    serve.add_argument("--email", default="sandbox@example.com")
    serve.add_argument("--admin-token", default="sandbox-admin")
    serve.add_argument(
        "--limits", default="real", help="real | off | per_second=5,per_hour=100,..."
    )
    serve.add_argument("--faults-seed", type=int, default=0)
    serve.add_argument("--timezone", default="UTC", help="company time zone (IANA name)")
    serve.add_argument("--order", choices=ORDERS, default="id")
    serve.add_argument("--pagination", choices=PAGINATIONS, default="has_next_page")
    serve.add_argument("--page-size", type=int, default=20)
    serve.add_argument("--date-style", choices=DATE_STYLES, default="offset")
    serve.add_argument("--validation-status", type=int, default=400)
    serve.add_argument(
        "--modified-since", choices=MODIFIED_SINCE, default="lenient",
        help="lenient: also Z, offsets and bare dates; strict: YYYY-MM-DDTHH:MM:SS only",
    )  # fmt: skip
    serve.add_argument(
        "--unknown-filters", choices=UNKNOWN_FILTERS, default="ignore",
        help="a list parameter that is neither a filter nor a list field: ignore or 400",
    )  # fmt: skip
    serve.add_argument(
        "--unique-supplier-code", action="store_true",
        help="refuse a supplier whose uniqueCode another supplier has",
    )  # fmt: skip
    serve.add_argument("--fully-paid-error", choices=FULLY_PAID_ERRORS, default="already_paid")
    serve.add_argument(
        "--numeric-external-ids", action="store_true",
        help="serve an all-digit externalId as a JSON number instead of text",
    )  # fmt: skip
    serve.add_argument("--db", default=None, help="keep the SQLite data in this file")
    serve.add_argument(
        "--tls", action="store_true",
        help="serve HTTPS with a self-signed CA and certificate made at start (path printed)",
    )  # fmt: skip
    serve.add_argument(
        "--tls-dir", default=None, metavar="DIR",
        help="write the TLS files (ca.pem, server.pem) here instead of a temporary directory",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build the data, serve until interrupted."""
    args = build_parser().parse_args(argv)
    options = SandboxOptions(
        host=args.host,
        port=args.port,
        seed=args.seed,
        scale=args.scale,
        counts=_counts(args.count),
        companies=args.companies,
        token=args.token,
        email=args.email,
        admin_token=args.admin_token,
        limits=args.limits,
        faults_seed=args.faults_seed,
        timezone=args.timezone,
        order=args.order,
        pagination=args.pagination,
        page_size=args.page_size,
        date_style=args.date_style,
        validation_status=args.validation_status,
        modified_since=args.modified_since,
        unknown_filters=args.unknown_filters,
        unique_supplier_code=args.unique_supplier_code,
        fully_paid_error=args.fully_paid_error,
        numeric_external_ids=args.numeric_external_ids,
        db=args.db,
        tls=args.tls or args.tls_dir is not None,
        tls_dir=args.tls_dir,
    )
    print(f"precoro-sandbox: generating data (seed {args.seed}, scale {args.scale})...", flush=True)
    server = SandboxServer(options)
    server.start()
    print(f"precoro-sandbox listening on {server.url}", flush=True)
    if server.ca_path is not None:
        print(f"  TLS: trust the CA in {server.ca_path} (e.g. REQUESTS_CA_BUNDLE={server.ca_path})")
    for company in server.sandbox.companies.values():
        print(f"  company {company.index}: X-AUTH-TOKEN={company.token} email={company.email}")
    print(f"  admin API: {server.url}/_sandbox/  (header X-Sandbox-Admin: {args.admin_token})")
    print("  Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
