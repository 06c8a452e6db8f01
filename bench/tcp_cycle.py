"""A Modbus TCP poll cycle against the loopback round trip of the same bytes.

A cycle is one :meth:`drivers.sensors.ModbusBus.read` over a
:class:`drivers.tcp_line.TcpLine` of the simulated device's three points (a
float32 turbidity on unit 1, a pump coil and a float switch on unit 2: three
requests, MBAP-framed). The floor is a raw asyncio socket client and server on
127.0.0.1 exchanging exactly those request and reply bytes, one transaction at
a time, with no codec: what is left over it is the driver's and the
simulator's share. Both run in the same process and the same run.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench import Report, Summary, markdown_table
from drivers.modbus_pdu import READ_FUNCTIONS, ReadRequest
from drivers.modbus_tcp import RequestDecoder, TcpFraming, encode_reply
from drivers.sensors import ModbusBus
from drivers.tcp_line import TcpLine
from simulators.devices import answer_read
from simulators.modbus_tcp import ModbusTcpDevice, default_tcp_units
from simulators.world import World

CYCLES = 500
QUICK_CYCLES = 100
WARMUP = 20


def exchanges(device: ModbusTcpDevice) -> list[tuple[bytes, bytes]]:
    """The (request, reply) bytes of one cycle, as the driver and the device send them."""
    framing = TcpFraming()
    out = []
    for unit in device.units.values():
        for point in unit.points:
            function = READ_FUNCTIONS[point.register_type]
            read = ReadRequest(point.unit, function, point.register, point.count)
            wire, _ = framing.encode(read)
            [(tid, request)] = RequestDecoder().feed(wire)
            assert isinstance(request, ReadRequest)
            reply = answer_read(unit, request, device.world, time.time())
            out.append((wire, encode_reply(tid, reply)))
    return out


async def floor_cycles(pairs: list[tuple[bytes, bytes]], n: int) -> list[int]:
    """Raw loopback round trips of the cycle's bytes: the server answers each request
    with its canned reply as soon as the whole request is in."""
    replies = dict(pairs)
    size = len(pairs[0][0])

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await reader.readexactly(size):
                writer.write(replies[request])
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    samples = []
    try:
        for i in range(WARMUP + n):
            started = time.perf_counter_ns()
            for request, reply in pairs:
                writer.write(request)
                await reader.readexactly(len(reply))
            if i >= WARMUP:
                samples.append(time.perf_counter_ns() - started)
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
    return samples


async def bus_cycles(device: ModbusTcpDevice, n: int) -> list[int]:
    line = TcpLine(device.port.address, name="tcp-bench", timeout=1.0)
    points = [p for unit in device.units.values() for p in unit.points]
    bus = ModbusBus(line, points, framing=TcpFraming())
    samples = []
    try:
        for i in range(WARMUP + n):
            started = time.perf_counter_ns()
            readings = await bus.read()
            if i >= WARMUP:
                samples.append(time.perf_counter_ns() - started)
            if not all(r.good for r in readings):
                raise RuntimeError(f"poll failed: {[r.detail for r in readings]}")
    finally:
        await line.close()
    return samples


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> Report:
    """Time whole poll cycles and the raw round trips of their bytes; return the table."""
    n = min(iterations, 5000) if iterations else (QUICK_CYCLES if quick else CYCLES)
    device = ModbusTcpDevice("bench-tcp", World(seed=1), default_tcp_units(), time_scale=0.0)
    await device.start()
    try:
        pairs = exchanges(device)
        floor = Summary.of_ns(await floor_cycles(pairs, n))
        cycle = Summary.of_ns(await bus_cycles(device, n))
    finally:
        await device.stop()
    return _report(floor, cycle, len(pairs))


def _report(floor: Summary, cycle: Summary, requests: int) -> Report:
    header = ["row", "ms", "x loopback"]
    base = floor.median
    rows = [
        [
            f"raw loopback round trips of the cycle's bytes ({requests}), median",
            f"{floor.median / 1000:.3f}",
            "1.00x",
        ],
        [
            f"ModbusBus.read cycle over TcpLine, median of {cycle.n}",
            f"{cycle.median / 1000:.3f}",
            f"{cycle.median / base:.2f}x",
        ],
        [
            "ModbusBus.read cycle over TcpLine, p99",
            f"{cycle.p99 / 1000:.3f}",
            f"{cycle.p99 / base:.2f}x",
        ],
        [
            "left for the codec, the line and the simulator, per request (median)",
            f"{(cycle.median - floor.median) / requests / 1000:+.3f}",
            "—",
        ],
    ]
    notes = [
        "Both sides of both rows run in one process on one event loop; the device answers"
        " at once (no turnaround), so the difference is the driver's and the simulator's"
        " work per transaction, not the network's.",
    ]
    title = "### Modbus TCP poll cycle against the loopback round trip"
    text = "\n".join([title, "", markdown_table(header, rows), "", *notes])
    data = {
        "loopback_ms_median": floor.median / 1000,
        "cycle_ms_median": cycle.median / 1000,
        "cycle_ms_p99": cycle.p99 / 1000,
        "ratio_median": cycle.median / base,
        "requests_per_cycle": requests,
        "cycles": cycle.n,
    }
    return Report(text, data)
