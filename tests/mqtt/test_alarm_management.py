"""Who did it, on MQTT: an operator's dismissal and shelving carry the token's ``sub``
on ``alerts/events``, and a relay passes the ``shelved`` news on to its clients."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
from aiohttp import ClientSession

from tests.mqtt.conftest import Broker, Gateway, Relay
from tests.mqtt.test_relay import sites_known, take
from tests.mqtt.test_uplink import Collector

SECRET = "a secret for the alarm management tests, 32+ bytes"


def bearer(sub: str, role: str) -> dict[str, str]:
    claims = {"sub": sub, "role": role, "exp": int(time.time()) + 300}
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


async def test_dismissal_and_shelving_name_the_operator_on_mqtt_and_at_a_relay(
    tmp_path: Path, broker: Broker
) -> None:
    gateway = Gateway(tmp_path / "gw", broker)
    with gateway.config.open("a") as config:
        config.write(f'\n[auth]\njwt_secret = "{SECRET}"\n')
    relay = Relay(tmp_path / "relay", broker)
    ana = bearer("ana", "operator")
    async with Collector(broker) as collector, ClientSession() as http:
        await gateway.start()
        await relay.start()
        try:
            await collector.until(lambda: bool(collector.on("alerts/events")))
            [alert] = await (await http.get(gateway.url + "/api/alerts", headers=ana)).json()
            await sites_known(http, relay, 1)
            ws = await http.ws_connect(relay.url.replace("http", "ws") + "/ws/alerts")
            await take(ws, "initial", 1)
            url = gateway.url + "/alerts/dismiss"
            viewer = bearer("vic", "viewer")
            assert (
                await http.post(url, json={"alert_id": alert["id"]}, headers=viewer)
            ).status == 403
            response = await http.post(url, json={"alert_id": alert["id"]}, headers=ana)
            assert response.status == 200
            body = {"measurement": "water_level", "minutes": 30, "reason": "float cleaned"}
            response = await http.post(gateway.url + "/api/alerts/shelve", json=body, headers=ana)
            assert response.status == 200
            await collector.until(
                lambda: any(e["event"] == "shelved" for e in collector.on("alerts/events"))
            )
            [shelved_at_relay] = await take(ws, "shelved", 1)
            await ws.close()
        finally:
            await relay.stop()
            await gateway.stop()
    events = {e["event"]: e for e in collector.on("alerts/events")}
    dismissed, shelved = events["dismissed"], events["shelved"]
    assert (dismissed["by"], dismissed["message"]["by"]) == ("ana", "ana")
    assert dismissed["alert"]["id"] == alert["id"]
    assert events["raised"]["by"] is None  # the readings raised it, nobody did
    assert (shelved["by"], shelved["shelf"]["reason"]) == ("ana", "float cleaned")
    assert shelved["message"]["type"] == "shelved"
    assert shelved_at_relay == shelved["message"]  # passed on unchanged, seq and all
