"""The server's messages as pydantic models, for Python clients (``gateway.client``).

Shapes follow docs/protocol.md. Unknown keys are kept (``extra="allow"``): the
gateway may add keys in later versions, never rename them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    type: str  # each message narrows it; declared first so dumps start with it
    timestamp: str
    channel: str | None = None  # on /ws only


class Counts(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    total: int
    critical: int
    warning: int
    info: int


class Readings(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    temperature: float | None = None
    ph: float | None = None
    conductivity: float | None = None
    water_level: float | None = None
    reservoir_id: str | None = None


class SiteInfo(BaseModel):
    """One site in a ``sites`` message."""

    model_config = ConfigDict(extra="allow", frozen=True)

    status: str
    offline_since: str | None = None
    summary: Counts
    last_reading_at: str | None = None


class SitesMap(RootModel[dict[str, SiteInfo]]):
    """The ``data`` of a ``refresh`` on the ``sites`` channel."""

    model_config = ConfigDict(frozen=True)


class Initial(_Message):
    type: Literal["initial"]
    seq: int
    data: Counts


class Update(_Message):
    type: Literal["update"]
    seq: int
    data: Counts


class Dismissed(_Message):
    type: Literal["dismissed"]
    seq: int
    alert_id: str
    by: str | None = None  # who dismissed it (the token's sub; "local" without auth)


class Shelved(_Message):
    """A measurement's alerts shelved (``shelved``) or the shelf ended (``unshelved``;
    ``by`` None: it expired)."""

    type: Literal["shelved", "unshelved"]
    seq: int
    measurement: str
    until: str
    by: str | None = None
    reason: str


class SensorUpdate(_Message):
    type: Literal["sensor_update"]
    seq: int
    data: Readings


class Sites(_Message):
    """The ``sites`` channel: every site served, by reservoir id."""

    type: Literal["sites"]
    seq: int
    data: dict[str, SiteInfo]


class Heartbeat(_Message):
    type: Literal["heartbeat"]


class Pong(_Message):
    type: Literal["pong"]


class Refresh(_Message):
    type: Literal["refresh"]
    data: Counts | SitesMap | Readings


class Subscribed(_Message):
    type: Literal["subscribed"]


class Unsubscribed(_Message):
    type: Literal["unsubscribed"]


class Error(_Message):
    type: Literal["error"]
    error: str
    detail: str


Message = Annotated[
    Initial
    | Update
    | Dismissed
    | Shelved
    | SensorUpdate
    | Sites
    | Heartbeat
    | Pong
    | Refresh
    | Subscribed
    | Unsubscribed
    | Error,
    Field(discriminator="type"),
]
MESSAGE = TypeAdapter(Message)


def parse_message(text: str | bytes) -> Message:
    """One server frame -> its model. Raises pydantic.ValidationError if it is none of them."""
    return MESSAGE.validate_json(text)
