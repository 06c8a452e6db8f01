"""The sans-I/O WebSocket session: text and a clock in, effects out, nothing raised."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api.frames import encode
from gateway.api.session import (
    REFRESH_COST,
    Close,
    Effect,
    Refresh,
    Send,
    Session,
    Subscribe,
    Unsubscribe,
)

STREAMS = ("alerts", "sensors", "sites")


def session(fixed: str | None = None, rate: float = 1000.0, burst: int = 1000) -> Session:
    return Session(fixed=fixed, streams=STREAMS, rate=rate, burst=burst, now=0.0)


def error_of(effects: list[Effect]) -> str:
    [effect] = effects
    assert isinstance(effect, Send)
    assert effect.message["type"] == "error"
    assert effect.message["detail"]
    code: str = effect.message["error"]
    return code


def test_ping_refresh_subscribe_unsubscribe() -> None:
    s = session()
    assert s.handle('{"action": "ping"}', 0.0) == [Send({"type": "pong"})]
    assert s.handle('{"action": "refresh", "channel": "alerts"}', 0.0) == [Refresh("alerts")]
    assert s.handle('{"action": "subscribe", "channel": "sensors", "since": 4}', 0.0) == [
        Send({"type": "subscribed"}, "sensors"),
        Subscribe("sensors", 4),
    ]
    assert s.handle('{"action": "unsubscribe", "channel": "sensors"}', 0.0) == [
        Unsubscribe("sensors"),
        Send({"type": "unsubscribed"}, "sensors"),
    ]


def test_the_sites_channel_is_subscribed_like_any_other() -> None:
    s = session()
    assert s.handle('{"action": "subscribe", "channel": "sites", "since": 2}', 0.0) == [
        Send({"type": "subscribed"}, "sites"),
        Subscribe("sites", 2),
    ]
    assert s.handle('{"action": "refresh", "channel": "sites"}', 0.0) == [Refresh("sites")]
    assert error_of(s.handle('{"action": "subscribe", "channel": "sites:X"}', 0.0)) == (
        "unknown_channel"
    )


def test_a_fixed_endpoint_refreshes_its_own_stream_and_has_no_channels() -> None:
    s = session("alerts")
    assert s.handle('{"action": "refresh"}', 0.0) == [Refresh("alerts")]
    assert error_of(s.handle('{"action": "subscribe", "channel": "sensors"}', 0.0)) == (
        "unknown_action"
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[" * 20000 + "]" * 20000, "invalid_json"),
        ('{"a": ' * 20000 + "1" + "}" * 20000, "invalid_json"),
        ('{"action": "subscribe", "channel": ["a"]}', "unknown_channel"),
        ('{"action": "subscribe", "channel": {"a": 1}}', "unknown_channel"),
        ('{"action": "refresh", "channel": 1e5}', "unknown_channel"),
        ('{"action": "ping", "since": NaN}', "invalid_json"),
        ('{"action": "ping", "since": -Infinity}', "invalid_json"),
        ('{"action": "ping", "since": 1e400}', "invalid_json"),
        ('{"action": "ping", "since": ' + "9" * 5000 + "}", "invalid_json"),
        ('{"action": "subscribe", "channel": "alerts", "since": 1.5}', "invalid_since"),
        ('{"action": "subscribe", "channel": "alerts", "since": true}', "invalid_since"),
        ('{"action": "subscribe", "channel": "alerts", "since": "\u0661"}', "invalid_since"),
        ('{"action": "\\ud800"}', "unknown_action"),
        ('{"action": "subscribe", "channel": "\\udfff"}', "unknown_channel"),
        ("\ud800", "invalid_json"),
        ('{"action": ["ping"]}', "missing_action"),
        ("", "invalid_json"),
    ],
)
def test_hostile_text_gets_an_error_reply(text: str, code: str) -> None:
    effects = session().handle(text, 0.0)
    assert error_of(effects) == code
    [reply] = effects
    assert isinstance(reply, Send)
    encode(reply.message)  # the reply itself can go on the wire (no lone surrogate in it)


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = json.dumps({"action": "ping", "note": "[" * 500})
    assert session().handle(text, 0.0) == [Send({"type": "pong"})]


def test_rate_limit_warns_once_a_second_then_closes() -> None:
    s = session(rate=1.0, burst=3)
    ping = '{"action": "ping"}'
    assert all(s.handle(ping, 0.0) == [Send({"type": "pong"})] for _ in range(3))
    assert error_of(s.handle(ping, 0.0)) == "rate_limited"
    assert s.handle(ping, 0.5) == []  # still refused, warned already
    assert s.handle(ping, 0.6) == [Close(1008, "too many messages")]


def test_the_bucket_refills_with_time() -> None:
    s = session(rate=1.0, burst=REFRESH_COST)
    refresh = '{"action": "refresh", "channel": "alerts"}'
    assert s.handle(refresh, 0.0) == [Refresh("alerts")]
    assert error_of(s.handle(refresh, 1.0)) == "rate_limited"
    assert s.handle(refresh, 1.0 + REFRESH_COST) == [Refresh("alerts")]


# fuzzing -------------------------------------------------------------------------

#: Any text, lone surrogates included (st.text leaves them out), and JSON's punctuation.
RAW_TEXT = st.lists(
    st.one_of(
        st.characters(),
        st.integers(0xD800, 0xDFFF).map(chr),
        st.sampled_from(list('{}[]":,\\')),
    ),
    max_size=200,
).map("".join)
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["ping", "refresh", "subscribe", "unsubscribe", "alerts", "sensors", "sites"]),
)
JSON = st.recursive(
    ODD,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children)
    ),
    max_leaves=12,
)
MESSAGE = st.fixed_dictionaries(
    {},
    optional={"action": JSON, "channel": JSON, "since": JSON | RAW_TEXT},
)


def only_effects(effects: list[Effect]) -> None:
    for effect in effects:
        assert isinstance(effect, Send | Refresh | Subscribe | Unsubscribe | Close)
        if isinstance(effect, Send):
            encode(effect.message)  # every reply can be framed


@settings(max_examples=200, deadline=None)
@given(message=MESSAGE, fixed=st.sampled_from([None, "alerts", "sensors"]))
def test_any_json_message_gives_only_effects(message: dict[str, Any], fixed: str | None) -> None:
    only_effects(session(fixed).handle(json.dumps(message), 0.0))


@settings(max_examples=200, deadline=None)
@given(text=RAW_TEXT)
def test_any_text_gives_only_effects(text: str) -> None:
    only_effects(session().handle(text, 0.0))


@settings(max_examples=100, deadline=None)
@given(value=JSON)
def test_any_json_value_gives_only_effects(value: Any) -> None:
    only_effects(session().handle(json.dumps(value), 0.0))


@settings(max_examples=100, deadline=None)
@given(
    prefix=st.sampled_from(['{"action": "subscribe", "channel": "alerts", "since": ', "[", "{"]),
    junk=st.text(alphabet='[]{}"\\:,0123456789eE.-+NaInfity', max_size=100),
)
def test_json_like_junk_gives_only_effects(prefix: str, junk: str) -> None:
    only_effects(session().handle(prefix + junk, 0.0))
