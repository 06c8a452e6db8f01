"""The MQTT payload parsers: typed values or BadMessage, whatever the bytes."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mqtt.messages import (
    ActiveAlerts,
    AlertEvent,
    BadMessage,
    DismissCommand,
    Status,
    StreamMessage,
    parse_dismiss,
    parse_relayed,
)

KINDS = ("sensors", "alerts", "alerts/active", "alerts/events", "status", "bogus")
FUZZ = settings(max_examples=150, deadline=None)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "seq",
                    "timestamp",
                    "data",
                    "alert",
                    "id",
                    "event",
                    "message",
                    "alert_id",
                    "by",
                    "total",
                    "critical",
                    "warning",
                    "info",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


def encode(value: Any) -> bytes:
    """JSON as a peer might send it: NaN/inf and lone surrogates included."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(kind=st.sampled_from(KINDS), value=json_values)
def test_json_shaped_payloads_give_a_value_or_bad_message(kind: str, value: Any) -> None:
    topic = f"reservoirs/EMBALSE_01/{kind}"
    for parse in (
        lambda p: parse_relayed("reservoirs", topic, p),
        lambda p: parse_dismiss(topic, p),
    ):
        try:
            parse(encode(value))
        except BadMessage as exc:
            message = str(exc)
        else:
            continue
        assert message.startswith(topic + ": ")


@FUZZ
@given(kind=st.sampled_from(KINDS), payload=st.binary(max_size=200), reservoir=st.text(max_size=8))
def test_raw_bytes_give_a_value_or_bad_message(kind: str, payload: bytes, reservoir: str) -> None:
    topic = f"reservoirs/{reservoir}/{kind}"
    for parse in (
        lambda p: parse_relayed("reservoirs", topic, p),
        lambda p: parse_dismiss(topic, p),
    ):
        with contextlib.suppress(BadMessage):
            parse(payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[" * 20_000 + b"]" * 20_000, "nested deeper than 16"),
        (b"[" * 17 + b"]" * 17, "nested deeper than 16"),
        (b'{"alert_id": NaN}', "not JSON: NaN is not JSON"),
        (b'{"alert_id": 1e400}', "not JSON: number out of range: 1e400"),
        (b'{"alert_id": "\\ud800"}', "a string with a lone surrogate"),
        (b'{"alert_id": "A-1"\xff}', "not UTF-8 (byte 18)"),
        (b'{"alert_id": 5}', "alert_id: expected a string of 1 to 200 characters"),
        (b'{"alert_id": "A-1", "by": ["x"]}', "by: expected a string of 1 to 200 characters"),
        (b"[]", "the command: expected a JSON object, got an array"),
        (b"9" * 5000, "not JSON: Exceeds the limit"),
    ],
)
def test_a_bad_dismiss_names_the_topic_and_the_fault(payload: bytes, reason: str) -> None:
    with pytest.raises(BadMessage) as caught:
        parse_dismiss("r/E/commands/dismiss", payload)
    assert str(caught.value).startswith(f"r/E/commands/dismiss: {reason}")


def test_good_messages_parse_to_their_types() -> None:
    def parse(kind: str, body: object) -> object:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        return parse_relayed("reservoirs", f"reservoirs/E_1/{kind}", payload)

    update = {"type": "sensor_update", "seq": 3, "timestamp": "t", "data": {"ph": 7, "x": None}}
    assert parse("sensors", update) == StreamMessage(
        "E_1", "sensors", 3, "t", update["data"], update
    )  # type: ignore[arg-type]
    counts = {"total": 1, "critical": 0, "warning": 1, "info": 0}
    summary = {"type": "update", "seq": 1, "timestamp": "t", "data": counts}
    assert isinstance(parse("alerts", summary), StreamMessage)
    assert parse("alerts/active", [{"id": "A-1"}]) == ActiveAlerts("E_1", {"A-1": {"id": "A-1"}})
    event = parse("alerts/events", {"event": "cleared", "alert": {"id": "A-1"}, "message": None})
    assert event == AlertEvent("E_1", "cleared", "A-1", {"id": "A-1"}, None)
    assert parse("status", b"online") == Status("E_1", "online")
    assert parse_dismiss("t", b'{"alert_id": "A-1"}') == DismissCommand("A-1", None)
    with pytest.raises(BadMessage, match=r"data\.total: expected a whole number"):
        parse("alerts", {**summary, "data": {**counts, "total": True}})
    with pytest.raises(BadMessage, match="expected reservoirs/<reservoir_id>/<kind>"):
        parse_relayed("reservoirs", "other/E_1/sensors", b"{}")
