"""A Modbus poll cycle at 9600 baud against the limit the line itself sets.

The simulated RS-485 line (:class:`simulators.devices.ModbusBusDevice`, with
``time_scale=1.0``) answers each request after ``turnaround`` plus the wire
time of the request and the reply, ``11 / baud`` seconds per character, as a
real line would. A cycle is one :meth:`drivers.sensors.ModbusBus.read` of two
units (a float32 level on unit 1, an int16 temperature on unit 2: two
requests). Its duration is compared with the pure line time of its frames and
with line time plus the device's turnaround: what is left is the driver's share.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import Report, Summary, markdown_table
from drivers.modbus_rtu import READ_FUNCTIONS, ReadRequest, frame, reply_length
from drivers.model import ModbusPoint
from drivers.sensors import ModbusBus
from drivers.serial_line import SerialLine
from simulators.devices import ModbusBusDevice
from simulators.rig import default_units
from simulators.world import World

BAUD = 9600
CHAR_S = 11 / BAUD
CYCLES = 50
QUICK_CYCLES = 10
WARMUP = 3
POLL_INTERVAL = 2.0  # the gateway's default per bus
POINTS = (
    ModbusPoint("water_level", 1, 0, data_type="float32"),
    ModbusPoint("temperature", 2, 0, "input", "int16", scale=0.1),
)


def line_seconds(points: tuple[ModbusPoint, ...]) -> float:
    """Wire time of one cycle's frames: each point's request (8 bytes) and reply."""
    total = 0.0
    for point in points:
        request = ReadRequest(
            point.unit, READ_FUNCTIONS[point.register_type], point.register, point.count
        )
        total += (len(frame(request)) + reply_length(request)) * CHAR_S
    return total


async def run(
    *, iterations: int | None = None, quick: bool = False, out: Path | None = None
) -> Report:
    """Time whole poll cycles on the paced simulator; return the table."""
    n = min(iterations, 500) if iterations else (QUICK_CYCLES if quick else CYCLES)
    device = ModbusBusDevice(
        "bench-modbus", World(seed=1), default_units(), baudrate=BAUD, time_scale=1.0
    )
    await device.start()
    line = SerialLine(device.port.address, name="rs485-bench", baudrate=BAUD, timeout=1.0)
    try:
        await line.open()
        bus = ModbusBus(line, POINTS)
        for _ in range(WARMUP):
            await bus.read()
        samples = []
        for _ in range(n):
            started = time.perf_counter_ns()
            readings = await bus.read()
            samples.append(time.perf_counter_ns() - started)
            if not all(r.good for r in readings):
                raise RuntimeError(f"poll failed: {[r.detail for r in readings]}")
    finally:
        await line.close()
        await device.stop()
    return _report(Summary.of_ns(samples), device.turnaround)


def _report(cycle: Summary, turnaround: float) -> Report:
    wire_ms = line_seconds(POINTS) * 1000
    floor_ms = wire_ms + len(POINTS) * turnaround * 1000
    median_ms, p99_ms = cycle.median / 1000, cycle.p99 / 1000
    driver_ms = median_ms - floor_ms
    header = ["row", "ms", "x line time"]
    rows = [
        ["line time of the frames (2 requests, 2 replies)", f"{wire_ms:.2f}", "1.00x"],
        [
            f"line time + device turnaround ({turnaround * 1000:.0f} ms per request)",
            f"{floor_ms:.2f}",
            f"{floor_ms / wire_ms:.2f}x",
        ],
        [
            f"ModbusBus.read cycle, median of {cycle.n}",
            f"{median_ms:.2f}",
            f"{median_ms / wire_ms:.2f}x",
        ],
        ["ModbusBus.read cycle, p99", f"{p99_ms:.2f}", f"{p99_ms / wire_ms:.2f}x"],
        ["left for the driver and the pty (median - line - turnaround)", f"{driver_ms:+.2f}", "—"],
    ]
    notes = [
        "What is left over line and turnaround is mostly the simulator's own timing (asyncio"
        " waits in whole milliseconds) and two pty hops; the driver's share is the serial"
        " table's 'over floor', well under 0.1 ms a transaction.",
        f"At {BAUD} baud a character is 11 bits ({CHAR_S * 1e3:.3f} ms). One cycle keeps the"
        f" line busy {median_ms / (POLL_INTERVAL * 1000):.1%} of a {POLL_INTERVAL:g} s poll"
        f" interval: up to {int(POLL_INTERVAL * 1000 // median_ms)} such cycles fit in one.",
    ]
    title = f"### Modbus poll cycle at {BAUD} baud (simulated line, wire time paced)"
    text = "\n".join([title, "", markdown_table(header, rows), "", *notes])
    data = {
        "line_ms": wire_ms,
        "line_plus_turnaround_ms": floor_ms,
        "cycle_ms_median": median_ms,
        "cycle_ms_p99": p99_ms,
        "driver_ms": driver_ms,
        "cycles": cycle.n,
    }
    return Report(text, data)
