"""A gateway's start and stop apart from its web server: the simulated rig (``--simulate``),
the store, the serial ports and the pollers.

``sensor-gateway run`` starts this first, then loads the web server (aiohttp and the
REST and WebSocket modules) while the devices work on their start-up write, so that the
devices' own time to a full set of readings (RTD ``R``, then pH ``RT,<t>``: 1.5 s on the
datasheets) overlaps the imports instead of following them. ``build_app`` starts it from
the application's start-up where nothing has yet (tests, benchmarks, code that embeds the
gateway): one start and one stop either way.

Nothing here imports aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gateway.config import Config, ConfigError
from gateway.service import Gateway

if TYPE_CHECKING:  # the simulators are imported only when simulating
    from simulators.rig import Rig

log = logging.getLogger("gateway")
SIM_SCHEME = "sim://"


def resolve_ports(config: Config, rig: Rig | None) -> dict[str, str]:
    """Map ``sim://<device>`` ports to the simulator's devices; raise ConfigError if wrong."""
    ports: dict[str, str] = {}
    problems: list[str] = []
    for index, bus in enumerate(config.buses):
        if not bus.port.startswith(SIM_SCHEME):
            continue
        name = bus.port.removeprefix(SIM_SCHEME)
        where = f"buses[{index}].port"
        if rig is None:
            problems.append(f"{where}: {bus.port} is a simulated device: run with --simulate")
        elif name not in rig.devices:
            known = ", ".join(SIM_SCHEME + d for d in rig.devices)
            problems.append(f"{where}: {bus.port} is not a simulated device (one of {known})")
        else:
            ports[bus.name] = rig.devices[name].port.address
    if problems:
        raise ConfigError(problems)
    return ports


class GatewayRun:
    """A :class:`Gateway` (and, simulating, its rig) from its start to its stop.

    ``start`` and ``stop`` may each be called more than once; only the first call acts.
    A start that fails stops what it had started and raises (PortDisconnected with
    ``require_ports``).
    """

    def __init__(
        self,
        config: Config,
        *,
        simulate: bool = False,
        sim_time_scale: float = 1.0,
        require_ports: bool = False,
    ) -> None:
        """Builds the parts without starting any; a wrong ``sim://`` port raises ConfigError."""
        self.config = config
        self.rig: Rig | None = None
        if simulate:
            from simulators.rig import Rig

            self.rig = Rig(
                config.data_dir.absolute() / "serial" / "by-id", time_scale=sim_time_scale
            )
        self.gateway = Gateway(config, ports=resolve_ports(config, self.rig))
        self.require_ports = require_ports
        self._started = False
        self._stopped: asyncio.Event | None = None

    async def start(self) -> None:
        """The rig, the store (active alerts and dismissals back before any client), the
        ports, then the pollers and the background tasks."""
        if self._started:
            return
        self._started = True
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        if self.rig is not None:
            await self.rig.start()
        try:
            await self.gateway.restore()
            await self.gateway.open_ports(require=self.require_ports)
            await self.gateway.start()
        except BaseException:
            await self.stop()
            raise
        log.debug("buses started: %s", ", ".join(p.name for p in self.gateway.pollers))

    async def stop(self) -> None:
        """Stop the gateway (its store flushed and closed), then the rig; a second call
        waits for the first to finish."""
        if not self._started:
            return
        if self._stopped is not None:
            await self._stopped.wait()
            return
        self._stopped = asyncio.Event()
        try:
            await self.gateway.stop()
        finally:
            if self.rig is not None:
                await self.rig.stop()
            self._stopped.set()
