"""An in-process gateway on simulated probes tells real receivers of its alerts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.gateway.conftest import Client
from tests.helpers import until_true
from tests.notify.servers import SmtpSink, Webhook
from tests.processes import free_port

Make = Callable[..., Any]


def notify(url: str, **keys: object) -> str:
    lines = ["[[notify]]", f'url = "{url}"']
    for key, value in keys.items():
        shown = f'"{value}"' if isinstance(value, str) else str(value).replace("'", '"')
        lines.append(f"{key} = {shown}")
    return "\n".join(lines) + "\n"


def set_ph(client: Client, value: float) -> None:
    from simulators.control import RIG

    client.app[RIG].world.signals["ph"].set(value)


async def test_a_critical_ph_reaches_the_mailbox_in_spanish(
    make_client: Make, smtp: SmtpSink
) -> None:
    client = await make_client(
        extra=notify(smtp.url()), server_extra='public_url = "https://gw.example.org/"'
    )
    set_ph(client, 9.5)
    [mail] = await smtp.wait_for(1)
    assert mail["To"] == "ops@example.com"
    assert mail["Subject"] == "[CRÍTICA] EMBALSE_01: ph 9.5 pH (por encima de 9 pH)"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Severidad: CRÍTICA" in text
    assert "Valor: 9.5 pH" in text
    assert "Límite: por encima de 9 pH" in text
    assert re.search(r"Desde: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert "Panel: https://gw.example.org/" in text
    alerts = await (await client.get("/api/alerts")).json()
    assert f"Alerta: {alerts[0]['id']}" in text


async def test_a_webhook_gets_the_json_in_english_and_the_clearing(
    make_client: Make, webhook: Webhook
) -> None:
    client = await make_client(extra=notify(webhook.url), server_extra='language = "en"')
    set_ph(client, 8.7)
    [raised] = await webhook.wait_for(1)
    assert raised["title"] == "[WARNING] EMBALSE_01: ph 8.7 pH (above 8.5 pH)"
    assert raised["type"] == "warning"
    assert "Severity: WARNING" in raised["message"]
    set_ph(client, 7.2)
    cleared = (await webhook.wait_for(2))[1]
    assert cleared["title"] == "[CLEARED] EMBALSE_01: ph back to normal"
    assert cleared["type"] == "success"


async def test_routing_by_severity_and_measurement(make_client: Make, webhook: Webhook) -> None:
    quiet = notify(webhook.url.replace("/hook", "/other"), min_severity="critical")
    level_only = notify(webhook.url + "?x=1", measurements=["water_level"])
    client = await make_client(extra=quiet + level_only + notify(webhook.url))
    set_ph(client, 8.7)  # a warning on ph: only the third target wants it
    [body] = await webhook.wait_for(1)
    assert body["title"].startswith("[AVISO] EMBALSE_01: ph 8.7")

    async def all_sent() -> bool:
        status = (await (await client.get("/api/notify")).json())["targets"]
        return all(t["queued"] == 0 for t in status)

    await until_true(all_sent)  # committed with the raise: nothing else was queued
    metrics = await (await client.get("/metrics")).text()
    sent = dict(re.findall(r'gateway_notifications_sent_total\{target="([^"]+)"\} (\S+)', metrics))
    assert sent == {"0:json://127.0.0.1": "0.0", "1:json://127.0.0.1": "0.0",
                    "2:json://127.0.0.1": "1.0"}  # fmt: skip


async def test_reminders_repeat_and_stop_on_dismissal(make_client: Make, webhook: Webhook) -> None:
    target = notify(webhook.url, repeat_minutes=0.005, events=["raised", "dismissed"])
    client = await make_client(extra=target, server_extra='language = "en"')
    set_ph(client, 8.7)
    bodies = await webhook.wait_for(3)
    assert bodies[0]["title"].startswith("[WARNING]")
    assert [b["title"] for b in bodies[1:3]] == [
        "[REMINDER] EMBALSE_01: ph still in warning alert"
    ] * 2
    [alert] = await (await client.get("/api/alerts")).json()
    response = await client.post("/alerts/dismiss", json={"alert_id": alert["id"]})
    assert response.status == 200
    set_ph(client, 7.2)  # back to normal: the dismissal's latch goes
    await until_true(lambda: _cleared(client, alert["id"]))
    set_ph(client, 8.7)  # a new alert, with reminders of its own

    def reminders_of_new() -> int:
        return sum(
            "REMINDER" in b["title"] and alert["id"] not in b["message"] for b in webhook.bodies
        )

    await until_true(_async(lambda: reminders_of_new() >= 2))
    titles = [(b["title"], alert["id"] in b["message"]) for b in webhook.bodies]
    dismissed_at = titles.index(("[DISMISSED] EMBALSE_01: ph", True))
    assert not any(old and "REMINDER" in t for t, old in titles[dismissed_at:])


async def _cleared(client: Client, alert_id: str) -> bool:
    events = await (await client.get("/api/alerts/history")).json()
    return any(e["alert_id"] == alert_id and e["event"] == "cleared" for e in events)


def _async(test: Callable[[], bool]) -> Callable[[], Any]:
    async def probe() -> bool:
        return test()

    return probe


async def test_a_dead_target_is_reported_and_redacted(make_client: Make) -> None:
    dead = f"json://hook:s3cret@127.0.0.1:{free_port()}/hook"
    client = await make_client(extra=notify(dead))
    set_ph(client, 9.5)

    async def failing() -> bool:
        health = await (await client.get("/healthz")).json()
        return health.get("notify", {}).get("0:json://127.0.0.1", {}).get("state") == "failing"

    await until_true(failing)
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    [status] = (await (await client.get("/api/notify")).json())["targets"]
    assert status["url"] == "json://127.0.0.1"
    assert status["queued"] == 1
    assert status["last_success"] is None
    assert status["last_error"]
    text = (
        await (await client.get("/api/notify")).text() + await (await client.get("/healthz")).text()
    )
    assert "s3cret" not in text
    metrics = await (await client.get("/metrics")).text()
    assert re.search(
        r'gateway_notifications_failed_total\{target="0:json://127.0.0.1"\} [3-9]', metrics
    )


async def test_a_dead_target_never_holds_up_the_others(make_client: Make, webhook: Webhook) -> None:
    dead = notify(f"json://127.0.0.1:{free_port()}/hook")
    client = await make_client(extra=dead + notify(webhook.url))
    set_ph(client, 9.5)
    await webhook.wait_for(1)
    set_ph(client, 7.2)
    bodies = await webhook.wait_for(2)  # while the first target fails and waits to retry
    assert [b["title"].split("]")[0] for b in bodies] == ["[CRÍTICA", "[RESUELTA"]

    async def targets() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await (await client.get("/api/notify")).json())["targets"]
        return listed

    async def live_sent_all() -> bool:  # its row goes once the receiver has answered
        return (await targets())[1]["queued"] == 0

    await until_true(live_sent_all)
    dead_status, live_status = await targets()
    assert dead_status["queued"] == 2
    assert dead_status["last_error"]
    assert live_status["queued"] == 0
