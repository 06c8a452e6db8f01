"""docs/seed-walkthrough.md, server side: wscat's exchange, the log lines, the broadcast calls."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from simulators.control import RIG
from tests.gateway.test_listen import IPV6, has_ipv6_loopback
from tests.gateway.test_run import finished, gateway
from tests.helpers import until
from tests.walkthrough import snippet


async def start(tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, int]:
    process = await gateway(
        "run", "--simulate", "--port", "0", "--data-dir", str(tmp_path / "data"), *args,
        cwd=tmp_path,
    )  # fmt: skip
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 9)).decode()
    return process, int(line.split(" on http://127.0.0.1:")[1].split()[0])


def exchange() -> tuple[dict[str, Any], str, dict[str, Any]]:
    """wscat's lines in the walkthrough: what comes first, what is typed, what answers."""
    lines = snippet("wscat").splitlines()
    assert lines[0] == "$ wscat -c ws://localhost:8000/ws/alerts"
    got = [json.loads(line[2:]) for line in lines if line.startswith("< ")]
    [typed] = [line[2:] for line in lines if line.startswith("> ")]
    return got[0], typed, got[1]


async def test_the_wscat_recipe_on_localhost_and_ipv6_loopback(tmp_path: Path) -> None:
    initial, typed, pong = exchange()
    process, port = await start(tmp_path)
    hosts = ["localhost", "[::1]"] if has_ipv6_loopback() else ["localhost"]
    try:
        async with ClientSession() as session:
            for host in hosts:  # what wscat on recent Node tries first: ::1
                async with session.ws_connect(f"ws://{host}:{port}/ws/alerts") as ws:
                    first = await ws.receive_json(timeout=5)
                    await ws.send_str(typed)
                    answer = await ws.receive_json(timeout=5)
                async with session.ws_connect(f"ws://{host}:{port}/ws/sensors") as ws:
                    reading = await ws.receive_json(timeout=5)
                assert set(first) == set(initial)
                assert {k: first[k] for k in ("type", "seq", "data")} == {
                    k: initial[k] for k in ("type", "seq", "data")
                }
                assert set(answer) == set(pong)
                assert answer["type"] == "pong"
                assert reading["type"] == "sensor_update"
    finally:
        process.terminate()
        await finished(process)


@IPV6
async def test_ipv6_loopback_answers_wscat(tmp_path: Path) -> None:
    """The failure the issue saw: a client that goes to ::1 for localhost."""
    process, port = await start(tmp_path)
    try:
        async with (
            ClientSession() as session,
            session.ws_connect(f"ws://[::1]:{port}/ws/alerts") as ws,
        ):
            assert (await ws.receive_json(timeout=5))["type"] == "initial"
    finally:
        process.terminate()
        await finished(process)


async def test_the_server_log_lines(tmp_path: Path) -> None:
    process, port = await start(tmp_path, "--log-level", "DEBUG")
    url = f"http://localhost:{port}"
    try:
        async with ClientSession() as session:
            async with session.ws_connect(url.replace("http", "ws") + "/ws/alerts") as ws:
                await ws.receive_json(timeout=5)
                await ws.send_json({"action": "ping"})
                await ws.receive_json(timeout=5)

            async def gone() -> bool:
                async with session.get(url + "/healthz") as response:
                    return (await response.json())["connections"] == 0

            async with asyncio.timeout(5):
                while not await gone():  # noqa: ASYNC110 - no event tells of a close
                    await asyncio.sleep(0.05)
    finally:
        process.terminate()
        _, _, err = await finished(process)
    lines = [line for line in err.splitlines() if "[WebSocket]" in line]
    expected = snippet("server-log").splitlines()
    found = [next((i for i, line in enumerate(lines) if want in line), -1) for want in expected]
    assert -1 not in found, (expected, lines)
    assert found == sorted(found)  # in that order


async def run_blocks(*blocks: str, **names: Any) -> dict[str, Any]:
    """Run the walkthrough's Python blocks as one coroutine body (``names`` as its
    globals: what an earlier block made); its locals at the end."""
    source = "async def walkthrough():\n" + textwrap.indent("\n".join(blocks), "    ")
    source += "\n    return locals()\n"
    namespace: dict[str, Any] = dict(names)
    exec(compile(source, "seed-walkthrough.md", "exec"), namespace)
    result: dict[str, Any] = await namespace["walkthrough"]()
    return result


async def test_the_embedding_and_broadcast_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the default config's data_dir is ./data
    embed = snippet("embed").replace("8000", "0")
    started = await run_blocks(embed)
    app: web.Application = started["app"]
    runner: web.AppRunner = started["runner"]
    try:
        # The bus's own probe stops answering: the recipe's readings are the only ones.
        app[RIG].set_fault("ph", "timeout")
        status = started["gateway"].readings.status
        await until(lambda: status()["ph"]["quality"] == "timeout", timeout=8)
        done = await run_blocks(snippet("broadcast"), gateway=started["gateway"])
        assert done["counts"] == {"total": 1, "critical": 1, "warning": 0, "info": 0}
        assert "{'total': 1, 'critical': 1, 'warning': 0, 'info': 0}" in capsys.readouterr().out
        history = await started["gateway"].store.history(0, 10)
        assert [(e["event"], e["by"]) for e in history] == [
            ("raised", None),
            ("dismissed", "scada"),
        ]
    finally:
        await runner.cleanup()
