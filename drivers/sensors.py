"""The Modbus bus driver: the points of one line (RS-485 or TCP) in, readings out.

The data it reads into (:class:`~drivers.model.Reading`, :class:`~drivers.model.Quality`,
:class:`~drivers.model.ModbusPoint`) is in drivers/model.py, free of I/O.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from drivers.errors import DriverError, ModbusExceptionReply
from drivers.modbus_pdu import (
    ReadBlock,
    ReadRequest,
    ReadResponse,
    plan_reads,
)
from drivers.modbus_rtu import RtuFraming
from drivers.model import ModbusPoint, Quality, Reading, UnitBreaker, scaled
from drivers.serial_line import ReplyParser, SerialLine

log = logging.getLogger(__name__)

# Modbus (RTU or TCP) ---------------------------------------------------------


class Framing(Protocol):
    """How requests travel on a line: RTU frames or MBAP (modbus_rtu, modbus_tcp)."""

    name: str

    def encode(
        self, request: ReadRequest
    ) -> tuple[bytes, Callable[[], ReplyParser[ReadResponse]]]: ...


class ModbusBus:
    """The Modbus points on one line (RS-485, or TCP), read with as few requests as fit.

    ``framing`` is RTU (the default; also RTU through a serial server) or
    :class:`~drivers.modbus_tcp.TcpFraming` for Modbus TCP.
    """

    def __init__(
        self,
        line: SerialLine,
        points: Sequence[ModbusPoint],
        *,
        framing: Framing | None = None,
        poll_interval: float = 2.0,
        backoff_cap: float = 60.0,
        max_registers: int = 125,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.line = line
        self.points = tuple(points)
        self.framing: Framing = framing or RtuFraming()
        self._clock, self._wall = clock, wall_clock
        self._blocks = plan_reads(
            [(p.unit, p.function, p.register, p.count) for p in self.points], max_registers
        )
        units = {p.unit for p in self.points}
        self.breakers = {
            u: UnitBreaker(base=max(poll_interval, 1.0), cap=backoff_cap) for u in units
        }

    async def read(self) -> list[Reading]:
        """One poll of every point, in the order of ``points``.

        A skipped or failed point gets a bad-quality reading, never a value.
        """
        by_point: dict[int, Reading] = {}
        for block in list(self._blocks):
            by_point.update(zip(block.members, await self._read_block(block), strict=True))
        return [by_point[i] for i in range(len(self.points))]

    async def _read_block(self, block: ReadBlock) -> list[Reading]:
        request = block.request
        breaker = self.breakers[request.unit]
        if not breaker.allows(self._clock()):
            wait = breaker.retry_at - self._clock()
            detail = f"unit {request.unit} not answering; next try in {wait:.1f} s"
            return [self._failed(i, Quality.TIMEOUT, detail) for i in block.members]
        payload, parser = self.framing.encode(request)
        try:
            reply = await self.line.request(payload, parser, retries=0 if breaker.tripped else None)
        except ModbusExceptionReply as exc:
            breaker.succeeded()  # it answered: the unit is alive
            if not exc.retryable and len(block.members) > 1:
                self._split(block)  # maybe the merge crossed a hole; ask point by point
            return [self._failed(i, Quality.EXCEPTION, str(exc)) for i in block.members]
        except DriverError as exc:
            if exc.kind in ("timeout", "crc", "garbage"):
                breaker.failed(self._clock())
            return [self._failed(i, Quality.of(exc), str(exc)) for i in block.members]
        breaker.succeeded()
        now = self._wall()
        readings = []
        for i in block.members:
            point = self.points[i]
            raw = point.decode(block.slice(reply.values, point.register, point.count))
            if not math.isfinite(raw):
                readings.append(self._failed(i, Quality.DEVICE_ERROR, f"non-finite value {raw}"))
                continue
            value = scaled(raw, point.scale, point.offset)
            readings.append(Reading(point.measurement, value, Quality.GOOD, now, self.line.name))
        return readings

    def _split(self, block: ReadBlock) -> None:
        index = self._blocks.index(block)
        singles = plan_reads(
            [
                (p.unit, p.function, p.register, p.count)
                for p in (self.points[i] for i in block.members)
            ],
            max_registers=1,  # never merges: one request per point
        )
        self._blocks[index : index + 1] = [
            ReadBlock(b.request, tuple(block.members[m] for m in b.members)) for b in singles
        ]
        log.warning(
            "%s: unit %d refused a merged read; reading its points one by one",
            self.line.name,
            block.request.unit,
        )

    def _failed(self, index: int, quality: Quality, detail: str) -> Reading:
        point = self.points[index]
        return Reading(point.measurement, None, quality, self._wall(), self.line.name, detail)
