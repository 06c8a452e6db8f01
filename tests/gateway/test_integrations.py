"""The recipes of docs/integrations.md name what the gateway really serves: the Grafana
dashboard's queries name metrics of a live /metrics, the Telegraf and Node-RED configs
subscribe to topics the gateway publishes and read keys its messages carry."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from tests.gateway.conftest import Client

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\b(gateway_[a-z0-9_]+)")
SENSORS_TOPIC = "reservoirs/EMBALSE_01/sensors"
EVENTS_TOPIC = "reservoirs/EMBALSE_01/alerts/events"


def served_metrics(text: str) -> set[str]:
    """Every series name a scrape of this text may hold: histograms' too."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= (
                {name}
                if kind != "histogram"
                else {f"{name}_{s}" for s in ("bucket", "sum", "count")}
            )
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching (+ one level, # the rest)."""
    levels, parts = pattern.split("/"), topic.split("/")
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(parts) or (level != "+" and level != parts[i]):
            return False
    return len(levels) == len(parts)


async def test_grafana_queries_name_metrics_a_live_gateway_serves(client: Client) -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    served = served_metrics(await (await client.get("/metrics")).text())
    assert len(used) >= 10
    assert used <= served, f"not served: {sorted(used - served)}"


async def test_telegraf_reads_topics_and_keys_the_gateway_publishes(client: Client) -> None:
    config = tomllib.loads((DEPLOY / "telegraf.conf").read_text())
    [consumer] = config["inputs"]["mqtt_consumer"]
    assert any(matches(topic, SENSORS_TOPIC) for topic in consumer["topics"])
    [parser] = consumer["json_v2"]
    message: dict[str, Any] = {
        "timestamp": "x",
        "data": await (await client.get("/api/sensors/latest")).json(),
    }
    assert parser["timestamp_path"] in message
    [obj] = parser["object"]
    assert set(obj["tags"]) <= set(message[obj["path"]])


def test_node_red_flow_subscribes_to_the_gateway_topics() -> None:
    flow = json.loads((DEPLOY / "node-red-flow.json").read_text())
    inputs = {node["name"]: node for node in flow if node["type"] == "mqtt in"}
    assert matches(inputs["readings"]["topic"], SENSORS_TOPIC)
    assert matches(inputs["alert events"]["topic"], EVENTS_TOPIC)
    ids = {node["id"] for node in flow}
    wired = {target for node in flow for out in node.get("wires", []) for target in out}
    assert wired <= ids  # every wire ends at a node of the flow
    assert all(node.get("broker") in ids for node in flow if node["type"].startswith("mqtt "))
