"""The outbox across a mail server that goes away and a gateway killed with -9: every
notification arrives, once per event. The gateway runs as a real process."""

from __future__ import annotations

import signal
from pathlib import Path

from aiohttp import ClientSession

from tests.configs import PH, bus, entry, gateway_toml, table
from tests.helpers import until_true
from tests.notify.servers import SmtpSink
from tests.processes import GatewayProcess


def config_text(data_dir: Path, raised: str, cleared: str) -> str:
    return gateway_toml(
        data_dir,
        table("server", sensor_interval=1.0),
        bus("ph-probe", "sim://ezo-ph", "ezo", PH, poll_interval=0.2),
        table("thresholds.ph", warning_high=8.5, critical_high=9.0, hysteresis=0.1),
        entry("notify", url=raised, events=["raised"]),
        # a queue of its own (apprise sends one e-mail per 5.5 s per target)
        entry("notify", url=cleared, events=["cleared"]),
    )


async def failed(session: ClientSession, url: str, index: int) -> bool:
    targets = (await (await session.get(url + "/api/notify")).json())["targets"]
    return targets[index]["last_error"] is not None


async def test_smtp_down_then_back_across_a_kill_9_loses_nothing(tmp_path: Path) -> None:
    smtp = SmtpSink()  # not started: the mail server is down
    config = tmp_path / "gateway.toml"
    urls = {"raised": smtp.url(), "cleared": smtp.url(cc="oncall@example.com")}
    config.write_text(config_text(tmp_path / "data", **urls))
    gateway = GatewayProcess(config, args=("--simulate", "--port", "0"))
    await gateway.start()
    try:
        async with ClientSession() as session:
            await session.put(gateway.url + "/api/simulator/ph", json={"value": 9.6})
            await until_true(lambda: failed(session, gateway.url, 0))
            await session.put(gateway.url + "/api/simulator/ph", json={"value": 7.2})
            await until_true(lambda: failed(session, gateway.url, 1))
            await gateway.stop(signal.SIGKILL)  # both in the outbox, unsent

            await smtp.start()  # the mail server is back
            await gateway.start()
            mails = await smtp.wait_for(2)

            async def drained() -> bool:
                targets = await (await session.get(gateway.url + "/api/notify")).json()
                return all(t["queued"] == 0 and t["last_success"] for t in targets["targets"])

            await until_true(drained)
    finally:
        await gateway.stop()
        await smtp.stop()
    subjects = sorted(str(m["Subject"]) for m in smtp.mails)
    assert len(smtp.mails) == len(mails) == 2, subjects
    assert subjects[0].startswith("[CRÍTICA] EMBALSE_01: ph 9.6"), subjects
    assert subjects[1] == "[RESUELTA] EMBALSE_01: ph vuelve a la normalidad", subjects
    assert sorted(str(m["Cc"]) for m in smtp.mails) == ["None", "oncall@example.com"]
