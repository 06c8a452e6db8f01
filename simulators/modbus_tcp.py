"""A simulated Modbus TCP device: units behind one socket, MBAP framing.

Built on the driver's own codec (drivers.modbus_tcp) seen from the device
side, and on the RTU simulator's register model (``answer_read``), so a
point reads the same whether a unit sits on RS-485 or on TCP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from drivers.errors import ProtocolError
from drivers.modbus_pdu import ReadRequest
from drivers.modbus_tcp import RequestDecoder, encode_reply
from drivers.model import ModbusPoint
from simulators.devices import ModbusUnits, SimUnit, answer_read, ensure_signals
from simulators.tcp_port import TcpPort
from simulators.world import World

log = logging.getLogger(__name__)


class ModbusTcpDevice(ModbusUnits):
    """Modbus TCP units on 127.0.0.1 (port 0: any free one; ``port.address`` says which).

    Faults: ``timeout`` (no answer), ``garbage`` (random bytes instead of the
    reply), ``unplug`` (the listener and its connections close); per unit,
    ``timeout`` makes that unit dead. TCP carries no CRC, so no ``crc``.
    A client that sends a header that is not MBAP is disconnected.
    """

    kind = "modbus-tcp"

    def __init__(
        self,
        name: str,
        world: World,
        units: Sequence[SimUnit],
        *,
        turnaround: float = 0.002,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, world, time_scale=time_scale, clock=clock, tcp=True)
        self.units = {u.unit: u for u in units}
        self.turnaround = turnaround
        self._decoders: dict[int, RequestDecoder] = {}  # per connection
        ensure_signals(world, self.measurements)

    @property
    def tcp(self) -> TcpPort:
        assert isinstance(self.port, TcpPort)
        return self.port

    def set_fault(self, fault: str | None) -> None:
        if fault == "crc":
            raise ValueError("a Modbus TCP device has no CRC to corrupt: timeout, garbage, unplug")
        self._decoders.clear()
        super().set_fault(fault)

    def received(self, data: bytes) -> None:
        peer = self.tcp.peer
        assert peer is not None
        decoder = self._decoders.setdefault(peer, RequestDecoder())
        try:
            requests = decoder.feed(data)
        except ProtocolError as exc:
            log.info("%s: %s; closing the connection", self.name, exc)
            self._decoders.pop(peer, None)
            self.tcp.drop(peer)
            return
        for transaction, request in requests:
            unit = self.units.get(request.unit)
            if unit is None or self.fault == "timeout" or unit.fault == "timeout":
                continue  # nobody at that unit id answers
            unit.requests += 1
            if isinstance(request, ReadRequest):
                reply = answer_read(unit, request, self.world, self.clock())
            else:
                reply = request.reply()
            self.send_later(self.turnaround, encode_reply(transaction, reply))


def default_tcp_units() -> list[SimUnit]:
    """A turbidity transmitter (unit 1: float32 NTU in input register 0) and a pump
    controller (unit 2: the pump's run coil 0, a float switch on discrete input 0)."""
    return [
        SimUnit(1, "turbidity transmitter", [ModbusPoint("turbidity", 1, 0, "input", "float32")]),
        SimUnit(
            2,
            "pump controller",
            [
                ModbusPoint("pump", 2, 0, "coil"),
                ModbusPoint("float_switch", 2, 0, "discrete"),
            ],
        ),
    ]
