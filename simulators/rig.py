"""The bench rig: the simulated devices of one reservoir, on virtual ports.

Five EZO circuits (pH, EC, RTD, DO, ORP) on ptys, an RS-485 line with two
Modbus units, and a Modbus TCP device (a turbidity transmitter, a pump coil and
a float switch) on a 127.0.0.1 socket. The default configuration reads the
seed's four; a site configuration may read any of them (``sim://ezo-do``,
``sim://modbus-tcp``...).

Faults and values are addressed by measurement (``ph``) or by device name
(``ezo-ph``, ``modbus``, ``modbus-2``). A measurement names the device the
default configuration reads it from; a Modbus unit name (``modbus-<unit>``)
faults that unit alone, while ``unplug`` always takes the whole adapter (and
every unit behind it) off the bus.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

from drivers.errors import GatewayError
from drivers.model import ModbusPoint
from simulators.devices import Device, ModbusBusDevice, SimUnit
from simulators.ezo_device import EzoDevice
from simulators.modbus_tcp import ModbusTcpDevice, default_tcp_units
from simulators.world import FAULTS, World

#: measurement -> (device name, Modbus unit or None)
PRIMARY = {
    "ph": ("ezo-ph", None),
    "conductivity": ("ezo-ec", None),
    "temperature": ("ezo-rtd", None),
    "water_level": ("modbus", 1),
    "dissolved_oxygen": ("ezo-do", None),
    "orp": ("ezo-orp", None),
    "turbidity": ("modbus-tcp", 1),
    "pump": ("modbus-tcp", 2),
    "float_switch": ("modbus-tcp", 2),
    "level_downstream": ("modbus", 3),
}
#: Stable link names, shaped like the kernel's /dev/serial/by-id entries.
LINK_NAMES = {
    "ezo-ph": "usb-Atlas_Scientific_EZO-pH_SIM0001-if00-port0",
    "ezo-ec": "usb-Atlas_Scientific_EZO-EC_SIM0002-if00-port0",
    "ezo-rtd": "usb-Atlas_Scientific_EZO-RTD_SIM0003-if00-port0",
    "ezo-do": "usb-Atlas_Scientific_EZO-DO_SIM0005-if00-port0",
    "ezo-orp": "usb-Atlas_Scientific_EZO-ORP_SIM0006-if00-port0",
    "modbus": "usb-FTDI_USB-RS485_Cable_SIM0004-if00-port0",
}


class UnknownTarget(GatewayError, KeyError):
    pass


class Rig:
    """Builds, starts and stops the default set of simulated devices."""

    def __init__(
        self,
        link_dir: Path | None = None,
        *,
        world: World | None = None,
        time_scale: float = 1.0,
        continuous_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.world = world or World()
        self.link_dir = link_dir

        def link(name: str) -> Path | None:
            return link_dir / LINK_NAMES[name] if link_dir else None

        ezos = [
            ("ezo-ph", "pH"),
            ("ezo-ec", "EC"),
            ("ezo-rtd", "RTD"),
            ("ezo-do", "DO"),
            ("ezo-orp", "ORP"),
        ]
        self.devices: dict[str, Device] = {
            name: EzoDevice(
                name,
                circuit,
                self.world,
                link=link(name),
                continuous_interval=continuous_interval,
                time_scale=time_scale,
                clock=clock,
            )
            for name, circuit in ezos
        }
        self.devices["modbus"] = ModbusBusDevice(
            "modbus",
            self.world,
            default_units(),
            link=link("modbus"),
            time_scale=time_scale,
            clock=clock,
        )
        plc = ModbusTcpDevice(
            "modbus-tcp", self.world, default_tcp_units(), time_scale=time_scale, clock=clock
        )
        plc.tcp.tcp_port = _free_port()  # its address is known before it starts listening
        self.devices["modbus-tcp"] = plc

    @property
    def modbus(self) -> ModbusBusDevice:
        device = self.devices["modbus"]
        assert isinstance(device, ModbusBusDevice)
        return device

    def ezo(self, name: str) -> EzoDevice:
        device = self.devices[name]
        assert isinstance(device, EzoDevice)
        return device

    async def start(self) -> None:
        for device in self.devices.values():
            await device.start()

    async def stop(self) -> None:
        for device in self.devices.values():
            with contextlib.suppress(Exception):
                await device.stop()

    def targets(self) -> list[str]:
        units = [f"modbus-{u}" for u in self.modbus.units]
        return [*PRIMARY, *self.devices, *units]

    def set_value(self, target: str, value: float) -> None:
        """Pin what the probes of a measurement see."""
        if target not in PRIMARY:
            raise UnknownTarget(target)
        self.world.signals[target].set(value)

    def set_fault(self, target: str, fault: str | None) -> None:
        """Inject ``fault`` (or clear it with None) on a measurement's device or a device."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)} or null")
        name, unit = self._resolve(target)
        device = self.devices[name]
        if unit is None or fault == "unplug" or (fault is None and not device.port.plugged):
            device.set_fault(fault)
            if fault is None and isinstance(device, ModbusBusDevice):
                for sim_unit in device.units.values():
                    sim_unit.fault = None
            return
        assert isinstance(device, ModbusBusDevice | ModbusTcpDevice)
        device.units[unit].fault = fault

    def set_probe(self, target: str, changes: dict[str, float]) -> None:
        """Age the probe of an EZO circuit (a measurement or a device name): its reading
        drifts until it is calibrated again. Raises ValueError naming what is wrong."""
        name, _ = self._resolve(target)
        device = self.devices[name]
        if not isinstance(device, EzoDevice):
            raise ValueError(f"probe: {target} is not an EZO circuit")
        device.model.set_probe(**changes)

    def _resolve(self, target: str) -> tuple[str, int | None]:
        if target in PRIMARY:
            return PRIMARY[target]
        if target in self.devices:
            return target, None
        if target.startswith("modbus-"):
            with contextlib.suppress(ValueError):
                unit = int(target.removeprefix("modbus-"))
                if unit in self.modbus.units:
                    return "modbus", unit
        raise UnknownTarget(target)

    def summary(self) -> list[str]:
        """One line per device: name, protocol, pty path, stable link, measurements."""
        return [
            f"{d.name:<8} {d.kind:<10} {d.port.path or '-':<12} {d.port.link or '-'}  "
            f"{','.join(d.measurements)}"
            for d in self.devices.values()
        ]

    def describe(self) -> list[dict[str, object]]:
        return [device.describe() for device in self.devices.values()]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def default_units() -> list[SimUnit]:
    """A level transmitter (float32 level + int16 temperature x0.1), a temperature
    transmitter (int16 x0.1), and a level transmitter below the dam (float32), as
    found on reservoir RS-485 lines."""
    return [
        SimUnit(
            1,
            "level transmitter",
            [
                ModbusPoint("water_level", 1, 0, data_type="float32"),
                ModbusPoint("temperature", 1, 2, data_type="int16", scale=0.1),
            ],
        ),
        SimUnit(
            2,
            "temperature transmitter",
            [ModbusPoint("temperature", 2, 0, "input", "int16", scale=0.1)],
        ),
        SimUnit(
            3,
            "downstream level transmitter",
            [ModbusPoint("level_downstream", 3, 0, data_type="float32")],
        ),
    ]
