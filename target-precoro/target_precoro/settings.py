"""The target's own settings (beyond the shared connection settings), each declared once.

Every `TargetSettings` field is one setting's whole declaration
(`precoro_client.declared`): `TARGET_PROPERTIES`, the target's part of
`config_jsonschema` and so of `--about`, is derived from it. `TargetSettings.from_config`
parses the Singer config by the same declarations and raises `ConfigError` naming the
setting, so a typo in `match` or `mode` fails before any request is made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from precoro_client import declared, limits
from precoro_client.account_lock import LOCK_PREFIX
from precoro_client.declared import declare, declare_computed, integer, number
from precoro_client.errors import ConfigError
from precoro_client.registry import PARENT_ID_FIELD, Entity, get
from precoro_client.settings import state_home
from singer_sdk import typing as th

from target_precoro.threeway import ANY, DEFAULT_OWNER, OWNERS, Owner
from target_precoro.writable import SUPPORTED_STREAMS, supported_names

Mode = Literal["upsert", "update_only", "insert_only"]
MODES: tuple[str, ...] = ("upsert", "update_only", "insert_only")
LIST_MERGES: tuple[str, ...] = ("replace", "union")
UNKNOWN_FIELDS: tuple[str, ...] = ("error", "ignore")
MAX_LOOKUP_IDS = limits.MAX_EXTERNAL_IDS
"""Precoro accepts at most this many `external_id[]` values per call."""
DEFAULT_LOCK_WAIT_SECONDS = 300
"""Long enough for a run that is just finishing (a retry or a manual run started beside
a scheduled one), short against an orchestrator's task timeout."""
INDEX_RECHECK_HOURS = 24
"""A deleted Precoro record is noticed within a day, for 1 call per 200 records a day
(`MAX_LOOKUP_IDS` per look-up)."""
WRITE_SETTLE_SECONDS = 600
"""How long Precoro may still apply a POST after the client stopped waiting for it.

The client gives up after `read_timeout_seconds` (60 s by default); the server does
not notice and finishes the request on its own. PHP-FPM and nginx deployments cap a
request at 30-300 s (`max_execution_time`, `request_terminate_timeout`,
`proxy_read_timeout`), so 10 minutes is twice the longest common cap: a look-up made
that long after the POST left and still finding nothing means it was not applied.
"""


def default_state_dir() -> Path:
    """`target/` in the plugins' per-user state folder (beside the ledger)."""
    return state_home() / "target"


def _path(value: Any) -> Path:
    return Path(value).expanduser()


def _match_rules(raw: Any) -> dict[str, tuple[tuple[str, ...], ...]]:
    if not isinstance(raw, Mapping):
        raise ConfigError("match", "match must be an object of stream name -> list of rules")
    rules: dict[str, tuple[tuple[str, ...], ...]] = {}
    for stream, stream_rules in raw.items():
        if stream not in SUPPORTED_STREAMS:
            msg = f"match names unknown stream {stream!r}; supported: {supported_names()}"
            raise ConfigError("match", msg)
        entity = get(stream)
        names = {spec.name for spec in entity.fields}
        if not isinstance(stream_rules, list):
            raise ConfigError("match", f"match.{stream} must be a list of field lists")
        parsed: list[tuple[str, ...]] = []
        for given in stream_rules:
            rule = [given] if isinstance(given, str) else given
            if not isinstance(rule, list) or not rule or not all(isinstance(f, str) for f in rule):
                msg = f"match.{stream}: each rule is a non-empty list of field names, got {rule!r}"
                raise ConfigError("match", msg)
            for name in rule:
                if name not in names:
                    msg = f"match.{stream}: {stream} has no field {name!r}"
                    raise ConfigError("match", msg)
            parsed.append(tuple(rule))
        rules[stream] = tuple(parsed)
    return rules


def _custom_fields(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ConfigError("custom_fields", "custom_fields must be an object")
    result: dict[str, str] = {}
    for stream, value in raw.items():
        entity = SUPPORTED_STREAMS.get(stream)
        if entity is None or entity.parent is None:
            msg = f"custom_fields names {stream!r}, which is not a custom-field options stream"
            raise ConfigError("custom_fields", msg)
        result[stream] = str(value)
    return result


def _field_ownership(raw: Any) -> dict[str, dict[str, Owner]]:
    """Validate `field_ownership`: known streams, their fields, and erp/precoro/conflict."""
    name = "field_ownership"
    if not isinstance(raw, Mapping):
        raise ConfigError(name, f"{name} must be an object of stream -> {{field: owner}}")
    result: dict[str, dict[str, Owner]] = {}
    for stream, fields in raw.items():
        if stream != ANY and stream not in SUPPORTED_STREAMS:
            msg = f"{name} names unknown stream {stream!r}; supported: {supported_names()}, *"
            raise ConfigError(name, msg)
        if not isinstance(fields, Mapping):
            raise ConfigError(name, f"{name}.{stream} must be an object of field -> owner")
        known = (
            {spec.name for spec in SUPPORTED_STREAMS[stream].writable_fields}
            if stream != ANY
            else set()
        )
        parsed: dict[str, Owner] = {}
        for field_name, owner in fields.items():
            if field_name != ANY and field_name not in known:
                where = (
                    'only "*" is allowed under "*"'
                    if stream == ANY
                    else (f"{stream} has no writable field {field_name!r}")
                )
                raise ConfigError(name, f"{name}.{stream}: {where}")
            if owner not in OWNERS:
                msg = f"{name}.{stream}.{field_name} is {owner!r}; use one of {', '.join(OWNERS)}"
                raise ConfigError(name, msg)
            parsed[field_name] = owner
        result[stream] = parsed
    return result


@dataclass(frozen=True)
class TargetSettings:
    """Validated target settings; each field is one setting's whole declaration."""

    mode: Mode = declare(
        "upsert",
        kind=th.StringType,
        choices=MODES,
        description=(
            "`upsert` creates missing records and updates existing ones; `update_only` "
            "never creates; `insert_only` never touches existing records. Records left "
            "alone end as `skipped`."
        ),
    )
    dry_run: bool = declare(
        False,
        kind=th.BooleanType,
        parse=bool,
        description="Plan every write and write the same report, but send only reads.",
    )
    state_dir: Path = declare_computed(
        default_state_dir,
        kind=th.StringType,
        parse=_path,
        description=(
            "Directory for the externalId index (SQLite, one subdirectory per account). "
            "Default: $XDG_STATE_HOME/precoro/target. The write journal, record versions "
            "and three-way bases are the account's: they live beside the account lock, "
            "in the budget ledger's folder (or in the state_backend_url database)."
        ),
    )
    report_dir: Path = declare(
        Path("precoro-reports"),
        kind=th.StringType,
        parse=_path,
        description=(
            "Directory for each run's report (one JSONL line per record), summary and "
            "dead-letter file (replayable with --input)."
        ),
    )
    report_retention_days: float = number(
        30.0,
        minimum=0,
        maximum=36_500,
        description=(
            "Run folders in `report_dir` older than this many days (by their run id) "
            "are deleted at the start of a run, dead-letter files included (replay or "
            "copy them before); 0 keeps every run."
        ),
    )
    list_merge: str = declare(
        "replace",
        kind=th.StringType,
        choices=LIST_MERGES,
        description=(
            "List fields a PUT replaces (supplier `currencies`): `replace` sends the "
            "incoming list, `union` keeps Precoro's entries and adds the incoming ones."
        ),
    )
    match: dict[str, tuple[tuple[str, ...], ...]] = declare_computed(
        dict,
        kind=th.ObjectType(additional_properties=th.ArrayType(th.ArrayType(th.StringType))),
        parse=_match_rules,
        description=(
            "Initial linking rules per stream: ordered lists of fields, e.g. "
            '{"suppliers": [["businessRegistrationNumber"], ["uniqueCode"], '
            '["name", "country"], ["email"]]}. A record whose externalId is not in '
            "Precoro is matched against Precoro records without externalId (disabled "
            "ones included); exactly one match is linked. `[]` turns linking off for a "
            "stream. Default: the registry's rules for each entity."
        ),
    )
    unknown_fields: str = declare(
        "error",
        kind=th.StringType,
        choices=UNKNOWN_FIELDS,
        description=(
            "A record field that is not a Precoro field of its stream: `error` marks "
            "the record invalid, `ignore` drops the field."
        ),
    )
    max_failures: int = integer(
        0,
        minimum=0,
        description=(
            "Exit non-zero (after writing the report) when failed plus invalid records "
            "exceed this number."
        ),
    )
    write_error_log: bool = declare(
        False,
        kind=th.BooleanType,
        parse=bool,
        description=(
            "After a failed write to an existing Precoro record, PATCH the failure into "
            "its `externalIntegrationLog` (one extra call) so Precoro users see it."
        ),
    )
    lookup_batch_size: int = integer(
        MAX_LOOKUP_IDS,
        minimum=1,
        maximum=MAX_LOOKUP_IDS,
        description=f"externalIds per `external_id[]` look-up call (1-{MAX_LOOKUP_IDS}).",
    )
    lookback_minutes: float = number(
        5.0,
        minimum=0,
        maximum=10_080,
        description=(
            "The index refresh asks for changes since this long before the previous "
            "refresh (server clock), so edits at the boundary are not missed."
        ),
    )
    lock_wait_seconds: float = number(
        float(DEFAULT_LOCK_WAIT_SECONDS),
        minimum=0,
        maximum=86_400,
        description=(
            "How long a run waits for another target run writing to the same Precoro "
            "account (the account lock beside the budget ledger) before it stops "
            "cleanly: exit status 75, every record dead-lettered as not attempted, no "
            "STATE. 0 stops at once. Dry runs take no lock."
        ),
    )
    index_recheck_hours: float = number(
        float(INDEX_RECHECK_HOURS),
        minimum=0,
        maximum=8_760,
        description=(
            "The index vouches for a record (no look-up, `unchanged` costs nothing) only "
            "this long (less 5% for schedule jitter) after the run in which Precoro last "
            "showed it; then it is looked up again with "
            f"`external_id[]` (1 call per {MAX_LOOKUP_IDS} records), so a record deleted "
            "in Precoro "
            "(reset, restore) is re-created or re-linked. 0 re-checks every record on "
            "every run (a full re-check, e.g. after restoring an account)."
        ),
    )
    write_settle_seconds: float = number(
        float(WRITE_SETTLE_SECONDS),
        minimum=0,
        maximum=86_400,
        description=(
            "A POST whose outcome is unknown (timeout, dropped connection, cut response, "
            "killed run) is re-sent only if a look-up made this long after it left "
            "(Precoro's clock) still finds nothing; until then the record is unresolved "
            "(not final, STATE withheld) and each run looks it up first. 10 minutes is "
            "twice the longest request limit common on PHP/nginx servers."
        ),
    )
    field_ownership: dict[str, dict[str, Owner]] = declare_computed(
        dict,
        kind=th.ObjectType(
            additional_properties=th.ObjectType(additional_properties=th.StringType)
        ),
        parse=_field_ownership,
        description=(
            "Who wins when the ERP and Precoro disagree, per stream and field, e.g. "
            '{"suppliers": {"email": "precoro", "name": "erp", "*": "conflict"}}; '
            '"*" is every other field (or, as a stream, every other stream). `conflict` '
            "(the default): a three-way compare with the value last synced writes only "
            "what the ERP changed, keeps what a person changed in Precoro "
            "(`kept_precoro`) and reports a field both changed as `conflict` (not "
            "written). `erp`: the ERP always wins. `precoro`: written only while Precoro "
            "holds no value."
        ),
    )
    custom_fields: dict[str, str] = declare_computed(
        dict,
        kind=th.ObjectType(additional_properties=th.StringType),
        parse=_custom_fields,
        description=(
            "Default custom field per options stream, by id or name, e.g. "
            '{"itemcustomfieldoptions": "GL Account"}; a record\'s '
            f"`{PARENT_ID_FIELD}` (id or name) wins."
        ),
    )

    def owner(self, stream: str, name: str) -> Owner:
        """Who wins for one field: stream.field, stream.*, *.*, else the three-way rule."""
        for scope, key in ((stream, name), (stream, ANY), (ANY, ANY)):
            found = self.field_ownership.get(scope, {}).get(key)
            if found is not None:
                return found
        return DEFAULT_OWNER

    def match_rules(self, entity: Entity) -> tuple[tuple[str, ...], ...]:
        """Linking rules for an entity: the configured ones, else the registry's."""
        if entity.name in self.match:
            return self.match[entity.name]
        return tuple(tuple(rule) for rule in entity.match_keys)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TargetSettings:
        """Validate the target's settings; `ConfigError` names the first bad one."""
        return declared.from_config(cls, config)

    def account_dir(self, ledger_key: str) -> Path:
        """State directory of one account (hash of token + URL; never the token)."""
        digest = hashlib.sha256(ledger_key.encode()).hexdigest()[:16]
        return self.state_dir / digest


def account_file(ledger_path: Path, ledger_key: str, name: str) -> Path:
    """A file every writer of the account on this machine shares, whatever its `state_dir`.

    (With `state_backend_url` the same state is in PostgreSQL: `account_state`.)

    It lives beside the account lock (`write-<key>.lock`, in the budget ledger's folder):
    the write journal and the record versions, which a run from another `state_dir`
    must see (an open POST, a newer version) as surely as it sees the lock.
    """
    return ledger_path.parent / f"{LOCK_PREFIX}{ledger_key[:32]}.{name}"


TARGET_PROPERTIES = declared.properties(TargetSettings)
"""The target's own part of `config_jsonschema` (after the connection settings)."""
