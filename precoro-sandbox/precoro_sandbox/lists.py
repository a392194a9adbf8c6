"""List endpoints: query parameters compiled to SQL conditions, then one page served.

Filters come from the registry's `ListFilter`s; each is compiled to a condition on an
indexed column of the record table (`store.FILTER_COLUMNS`), so a page of a million
records is one indexed query.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from precoro_client import registry
from precoro_client.limits import MAX_EXTERNAL_IDS
from precoro_client.registry import PAGE_SIZES, Entity, Field, ListFilter

from precoro_sandbox import dates
from precoro_sandbox.options import Settings
from precoro_sandbox.replies import ApiError, Reply, field_errors
from precoro_sandbox.store import FILTER_COLUMNS, dumps

if TYPE_CHECKING:
    from precoro_sandbox.app import Company, Sandbox

INT_COLUMNS = frozenset({"id", "status", "logic_type", "supplier_id", "enable"})

Query = dict[str, list[str]]
"""Query parameters, each with every value it was given (repeated keys kept)."""


def parse_query(query: str) -> Query:
    """The query string as parameter -> values (blank values kept)."""
    multi: Query = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        multi.setdefault(key, []).append(value)
    return multi


def page_param(multi: Query) -> int:
    """The 1-based `page` (400 on `page` when it is not a positive integer)."""
    raw = multi.get("page", ["1"])[-1]
    try:
        page = int(raw)
    except ValueError:
        page = 0
    if page < 1:
        raise field_errors(400, {"page": "This value should be a positive integer."})
    return page


def per_page_param(multi: Query, default: int) -> int:
    """The `per_page` (one of `PAGE_SIZES`; `default` when absent)."""
    if "per_page" not in multi:
        return default
    raw = multi["per_page"][-1]
    allowed = ", ".join(str(size) for size in PAGE_SIZES)
    try:
        per_page = int(raw)
    except ValueError:
        per_page = 0
    if per_page not in PAGE_SIZES:
        raise field_errors(
            400, {"per_page": f"The value you selected is not a valid choice ({allowed})."}
        )
    return per_page


PAGING_PARAMS = frozenset({"page", "per_page"})
FIELD_FILTER_TYPES = frozenset({"string", "integer", "number", "boolean"})
"""List-field types a response-field equality filter compares (dates and objects are not)."""


def compile_filters(
    entity: Entity, multi: Query, settings: Settings
) -> tuple[list[str], list[Any]]:
    """SQL conditions for the query's filters.

    Declared registry filters first; then any other parameter that names a scalar list
    field of the entity (`country=`, `name[]=`) is an equality filter on that field, as
    Precoro's help says any response parameter can be. What remains is ignored or, with
    `unknown_filters=reject`, refused with a 400 naming the parameter.
    """
    where: list[str] = []
    params: list[Any] = []
    declared = set()
    for flt in entity.filters:
        declared.add(flt.param)
        values = multi.get(flt.param)
        if values is None:
            continue
        column = FILTER_COLUMNS[flt.field]
        clause, args = filter_clause(flt, column, values, settings)
        where.append(clause)
        params.extend(args)
    fields = {spec.name: spec for spec in entity.list_fields if spec.type in FIELD_FILTER_TYPES}
    for param, values in multi.items():
        if param in declared or param in PAGING_PARAMS:
            continue
        name = param[:-2] if param.endswith("[]") else param
        spec = fields.get(name)
        if spec is None:
            if settings.unknown_filters == "reject":
                raise field_errors(400, {param: "This filter is not supported."})
            continue
        clause, args = field_clause(param, spec, values)
        where.append(clause)
        params.extend(args)
    return where, params


def field_clause(param: str, spec: Field, values: list[str]) -> tuple[str, list[Any]]:
    """Equality (or `IN` for `name[]`) on a list field's value in the stored list row."""

    def typed(raw: str) -> Any:
        try:
            if spec.type == "integer":
                return int(raw)
            if spec.type == "number":
                return float(raw)
        except ValueError:
            raise field_errors(400, {param: "This value is not valid."}) from None
        if spec.type == "boolean":
            flag = raw.strip().lower()
            if flag not in ("1", "0", "true", "false"):
                raise field_errors(400, {param: "This value is not valid."})
            return 1 if flag in ("1", "true") else 0
        return raw

    column = "json_extract(list_json, ?)"
    path = f"$.{spec.name}"
    if param.endswith("[]"):
        items = [typed(v) for v in values if v != ""]
        if not items:
            return "1 = 0", []
        return f"{column} IN ({', '.join('?' * len(items))})", [path, *items]
    return f"{column} = ?", [path, typed(values[-1])]


def filter_clause(
    flt: ListFilter, column: str, values: list[str], settings: Settings
) -> tuple[str, list[Any]]:
    """One filter's SQL condition and arguments (400 naming the parameter when malformed)."""

    def bad(message: str = "This value is not valid.") -> ApiError:
        return field_errors(400, {flt.param: message})

    def scalar(raw: str) -> Any:
        if column in INT_COLUMNS:
            try:
                return int(raw)
            except ValueError:
                raise bad() from None
        return raw

    last = values[-1]
    if flt.op == "in":
        if column == "external_id" and len(values) > MAX_EXTERNAL_IDS:
            raise bad(f"This collection should contain {MAX_EXTERNAL_IDS} elements or less.")
        items = [scalar(v) for v in values if v != ""]
        if not items:
            return "1 = 0", []
        return f"{column} IN ({', '.join('?' * len(items))})", items
    if flt.op == "eq":
        return f"{column} = ?", [scalar(last)]
    if flt.op == "bool":
        flag = last.strip().lower()
        if flag not in ("1", "0", "true", "false"):
            raise bad()
        return f"{column} = ?", [1 if flag in ("1", "true") else 0]
    if flt.op == "has":
        if last not in ("0", "1"):
            raise bad()
        return f"{column} IS {'NOT ' if last == '1' else ''}NULL", []
    fmt = flt.date_format or registry.MODIFIED_SINCE_FORMAT
    try:
        if flt.op == "since":
            strict = settings.modified_since == "strict"
            moment = dates.parse_since(last, settings.tz, strict=strict)
        else:
            moment = dates.parse_local(last, fmt, settings.tz)
    except ValueError:
        if flt.op == "since":
            raise bad(
                "Invalid date format. Expected YYYY-MM-DDTHH:MM:SS, e.g. 2024-06-06T00:00:00."
            ) from None
        raise bad("Invalid date.") from None
    whole_day = "%H" not in fmt
    if flt.op == "le":
        if whole_day:
            return f"{column} < ?", [int(dates.day_after(moment).timestamp())]
        return f"{column} <= ?", [int(moment.timestamp())]
    if flt.op == "since":  # an instant between two whole seconds excludes the earlier one
        return f"{column} >= ?", [math.ceil(moment.timestamp())]
    return f"{column} >= ?", [int(moment.timestamp())]


class Lists:
    """Serves `GET {path}`: one page, filtered, ordered and paginated per the settings."""

    def __init__(self, sandbox: Sandbox) -> None:
        """Bind to the sandbox whose store and settings pages come from."""
        self.sb = sandbox

    def serve(self, company: Company, entity: Entity, parent_id: int | None, query: str) -> Reply:
        """One page of a list; armed paging mutations fire right after it is built."""
        settings = self.sb.settings
        store = self.sb.store
        multi = parse_query(query)
        page = page_param(multi)
        per_page = per_page_param(multi, settings.page_size)
        where, params = compile_filters(entity, multi, settings)
        if parent_id is not None:
            where.append("parent_id = ?")
            params.append(parent_id)
        rows = store.page(
            company.index,
            entity.name,
            where,
            params,
            order=settings.order,
            limit=per_page + 1,
            offset=(page - 1) * per_page,
        )
        has_next = len(rows) > per_page
        rows = rows[:per_page]
        pagination: dict[str, Any] = {}
        if settings.pagination == "legacy":
            total = store.count(company.index, entity.name, where, params)
            pagination = {
                "total": total,
                "count": len(rows),
                "per_page": per_page,
                "current_page": page,
                "total_pages": max(1, math.ceil(total / per_page)),
            }
        pagination["has_next_page"] = has_next
        text = '{"data":[' + ",".join(rows) + '],"meta":{"pagination":' + dumps(pagination) + "}}"
        reply = Reply(200, self.sb.render(text))
        for rule in self.sb.paging.page_served(entity.name):
            self.sb.simulation.paging_mutation(company, entity, rule, rows)
        return reply
