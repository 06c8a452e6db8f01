"""Where `sensor-gateway run` listens: localhost is both loopbacks; a busy port exits 2."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiohttp import ClientConnectorError, ClientSession

from gateway.api.listen import addresses
from tests.gateway.test_run import finished, gateway


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")


def test_localhost_is_both_loopbacks_and_a_list_binds_each_once() -> None:
    assert addresses("localhost") == ["127.0.0.1", "::1"]
    assert addresses(["127.0.0.1", "::1", "127.0.0.1"]) == ["127.0.0.1", "::1"]
    assert addresses("0.0.0.0") == ["0.0.0.0"]
    assert addresses(["localhost", "192.0.2.7"]) == ["127.0.0.1", "::1", "192.0.2.7"]


async def banner_port(*args: str, cwd: Path) -> tuple[object, int]:
    process = await gateway("run", "--simulate", "--port", "0", *args, cwd=cwd)
    assert process.stdout is not None
    line = (await process.stdout.readline()).decode()
    assert " on http://127.0.0.1:" in line, line
    return process, int(line.split(" on http://127.0.0.1:")[1].split()[0])


async def answers(url: str) -> bool:
    async with ClientSession() as session:
        try:
            async with session.get(url + "/healthz") as response:
                return response.status == 200
        except ClientConnectorError:
            return False


@IPV6
async def test_the_default_answers_on_127_0_0_1_and_on_ipv6_loopback(tmp_path: Path) -> None:
    process, port = await banner_port("--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    try:
        assert await answers(f"http://127.0.0.1:{port}")
        assert await answers(f"http://[::1]:{port}")
    finally:
        process.terminate()  # type: ignore[attr-defined]
        code, _, err = await finished(process)  # type: ignore[arg-type]
    assert code == 0
    assert f"listening on 127.0.0.1:{port}, [::1]:{port}" in err


@IPV6
async def test_host_on_the_command_line_limits_where_it_listens(tmp_path: Path) -> None:
    args = ("--host", "127.0.0.1", "--data-dir", str(tmp_path / "data"))
    process, port = await banner_port(*args, cwd=tmp_path)
    try:
        assert await answers(f"http://127.0.0.1:{port}")
        assert not await answers(f"http://[::1]:{port}")
    finally:
        process.terminate()  # type: ignore[attr-defined]
        await finished(process)  # type: ignore[arg-type]


async def test_a_port_that_cannot_be_bound_exits_2_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await gateway(
            "run", "--simulate", "--port", str(port), "--data-dir", str(tmp_path), cwd=tmp_path
        )
        code, _, err = await finished(process)
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "cannot listen" in line]) == 1
