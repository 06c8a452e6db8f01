"""Shelf news for Python clients (gateway.messages, ``watch``) and on MQTT (the relay's
parser): parsed into their own types, malformed ones refused with our error."""

from __future__ import annotations

import json

import pytest

from gateway.messages import Dismissed, Shelved, parse_message
from gateway.mqtt.messages import BadMessage, ShelfNews, parse_relayed
from gateway.watch import describe

SHELVED = {
    "type": "shelved", "timestamp": "2026-11-27T22:45:00.120Z", "seq": 4, "measurement": "ph",
    "until": "2026-11-27T23:15:00.120Z", "by": "ana", "reason": "cleaning the probe",
}  # fmt: skip
TOPIC = "reservoirs/EMBALSE_01/alerts/events"


def test_python_clients_parse_shelf_news_and_who_dismissed() -> None:
    shelved = parse_message(json.dumps(SHELVED))
    assert isinstance(shelved, Shelved)
    assert (shelved.seq, shelved.by) == (4, "ana")
    assert describe(shelved).endswith("shelved: ph until 2026-11-27T23:15:00.120Z by ana: "
                                      "cleaning the probe")  # fmt: skip
    expired = parse_message(json.dumps({**SHELVED, "type": "unshelved", "by": None}))
    assert "(expired)" in describe(expired)
    dismissed = parse_message(
        '{"type": "dismissed", "timestamp": "t", "seq": 5, "alert_id": "A-1", "by": "ana"}'
    )
    assert isinstance(dismissed, Dismissed)
    assert describe(dismissed).endswith("dismissed: A-1 by ana")


def test_the_relay_parses_a_shelf_event() -> None:
    event = {"event": "shelved", "at": "t", "by": "ana", "shelf": {}, "message": SHELVED}
    parsed = parse_relayed("reservoirs", TOPIC, json.dumps(event).encode())
    assert parsed == ShelfNews("EMBALSE_01", "shelved", "ana", SHELVED)


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ({"event": "shelved", "by": "ana"}, "message"),
        ({"event": "shelved", "message": {**SHELVED, "seq": -1}}, "message.seq"),
        ({"event": "unshelved", "message": SHELVED}, "message.type"),
        ({"event": "shelved", "by": 7, "message": SHELVED}, "by"),
        ({"event": "shelve", "message": SHELVED}, "shelved, unshelved"),
    ],
)
def test_malformed_shelf_events_are_refused_naming_the_key(
    event: dict[str, object], fragment: str
) -> None:
    with pytest.raises(BadMessage, match=fragment):
        parse_relayed("reservoirs", TOPIC, json.dumps(event).encode())
