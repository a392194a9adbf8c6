"""What a request ends in: a `Reply` for the socket layer, or an `ApiError` on the way there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from precoro_sandbox.store import dumps

Action = Literal["send", "drop", "truncate"]


@dataclass
class Reply:
    """What to send back for one request."""

    status: int
    body: bytes
    content_type: str = "application/json"
    action: Action = "send"


class ApiError(Exception):
    """A request that ends in an error response."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        """Remember the status and JSON body."""
        super().__init__(status)
        self.status = status
        self.body = body


def field_errors(status: int, errors: dict[str, str]) -> ApiError:
    """Precoro's validation shape: `{"errors": {"errors": {field: message}}}`."""
    return ApiError(status, {"errors": {"errors": errors}})


def plain_error(status: int, message: str) -> ApiError:
    """A simple `{"error": message, "code": status}` error (assumed shape)."""
    return ApiError(status, {"error": message, "code": status})


def json_reply(status: int, payload: Any) -> Reply:
    """A JSON reply of any payload."""
    return Reply(status, dumps(payload).encode())
