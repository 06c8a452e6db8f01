"""``sensor-gateway notify-test``: one line per target, exit 1 when any fails."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.notify.servers import Webhook
from tests.processes import free_port


async def notify_test(config: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "notify-test", "-c", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 9.0)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_one_line_per_target_and_exit_1_when_one_fails(
    tmp_path: Path, webhook: Webhook
) -> None:
    dead = f"json://user:s3cret@127.0.0.1:{free_port()}/hook"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[server]\nlanguage = "en"\n[[notify]]\nurl = "{webhook.url}"\n'
        f'[[notify]]\nurl = "{dead}"\n'
    )
    code, out, _ = await notify_test(config)
    lines = out.splitlines()
    assert code == 1, out
    assert lines[0] == "0:json://127.0.0.1: ok"
    assert lines[1].startswith("1:json://127.0.0.1: fail: ")
    assert "s3cret" not in out
    [body] = webhook.bodies
    assert body["title"] == "Notification test from EMBALSE_01"

    config.write_text(f'[[notify]]\nurl = "{webhook.url}"\n')
    code, out, _ = await notify_test(config)
    assert (code, out) == (0, "0:json://127.0.0.1: ok\n")
    assert webhook.bodies[1]["title"] == "Prueba de notificación de EMBALSE_01"


async def test_no_targets_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("")
    code, _, err = await notify_test(config)
    assert (code, err) == (1, "no [[notify]] targets configured\n")
