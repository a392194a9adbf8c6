"""The Precoro routes the sandbox serves, generated from the registry (never per entity)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from precoro_client import registry
from precoro_client.registry import Entity

from precoro_sandbox.entities import SANDBOX_ENTITIES, ActionName
from precoro_sandbox.replies import plain_error


@dataclass(frozen=True)
class Route:
    """One generated route: an entity's list or detail path."""

    entity: Entity
    kind: Literal["list", "detail", "action"]
    pattern: str
    """Counter label, e.g. `/suppliers/{id}`."""
    regex: re.Pattern[str]
    action: ActionName | None = None
    """For `action` routes: the business action (see the entity table)."""
    method: str | None = None
    """For `action` routes: the only method served."""


def build_routes() -> list[Route]:
    """Action routes of the entity table, then list and detail routes from the registry."""
    routes = []
    for name, entry in SANDBOX_ENTITIES.items():
        for action in entry.actions:
            entity = registry.get(name)
            label = action.path.replace("{key}", f"{{{entity.key}}}")
            regex = re.escape(action.path).replace(re.escape("{key}"), "(?P<key>[^/]+)")
            routes.append(
                Route(entity, "action", label, re.compile(f"^{regex}$"), action.name, action.method)
            )
    for entity in registry.stored_collections():
        list_regex = re.escape(entity.path).replace(
            re.escape("{parent_id}"), "(?P<parent_id>[^/]+)"
        )
        routes.append(Route(entity, "list", entity.path, re.compile(f"^{list_regex}$")))
        routes.append(
            Route(
                entity,
                "detail",
                f"{entity.path}/{{{entity.key}}}",
                re.compile(f"^{list_regex}/(?P<key>[^/]+)$"),
            )
        )
    return routes


ROUTES = build_routes()


def match_route(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route serving `path` and its path parameters."""
    for route in ROUTES:
        found = route.regex.match(path)
        if found:
            return route, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


def record_key(entity: Entity, key: str) -> tuple[str, Any]:
    """The store column and value a path key addresses (404 when an id is not numeric)."""
    if entity.key == "idn":
        return "idn", key
    try:
        return "id", int(key)
    except ValueError:
        raise plain_error(404, "Not Found") from None
