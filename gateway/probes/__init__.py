"""Probes: what each configured measurement is called and shown as, and their care
(calibration through the EZO circuits, recorded with who and when).

:func:`layout` is what ``/api/info`` tells a dashboard; :mod:`gateway.probes.api`
serves ``/api/probes`` and the calibration; :mod:`gateway.probes.store` keeps the
calibration records.
"""

from __future__ import annotations

from typing import Any

from drivers.ezo_sensor import CIRCUIT_UNITS, EZO_TYPES
from drivers.model import EZO_CIRCUITS, MEASUREMENTS, UNITS
from gateway.config import Config, SensorConfig

#: Decimals shown for the seed's four (the probes' resolution), then per EZO circuit.
SEED_DECIMALS = {"temperature": 1, "ph": 2, "conductivity": 0, "water_level": 2}
CIRCUIT_DECIMALS = {"pH": 2, "EC": 0, "RTD": 1, "DO": 2, "ORP": 1}


def configured(config: Config) -> list[str]:
    """Every measurement a bus reads: the seed's four first (in their order), then the rest."""
    read = [s.measurement for bus in config.buses for s in bus.sensors]
    return [m for m in MEASUREMENTS if m in read] + [m for m in read if m not in MEASUREMENTS]


def ezo_sensors(config: Config) -> dict[str, tuple[str, SensorConfig]]:
    """measurement -> (bus name, sensor) of every sensor on an ezo bus."""
    return {
        s.measurement: (bus.name, s)
        for bus in config.buses
        if bus.protocol == "ezo"
        for s in bus.sensors
    }


def circuit_of(sensor: SensorConfig) -> str | None:
    """The EZO circuit type (``pH``, ``DO``...) a sensor expects; None: whatever ``i`` says."""
    if sensor.circuit is not None:
        return EZO_TYPES[sensor.circuit]
    return EZO_CIRCUITS.get(sensor.measurement)


def layout(config: Config) -> dict[str, Any]:
    """The ``/api/info`` keys that lay out a dashboard: names, labels, units, decimals, and
    which measurements are EZO probes (their circuit type, None until ``i`` says)."""
    ezo = ezo_sensors(config)
    names = configured(config)
    labels, units, decimals, circuits = {}, dict(UNITS), {}, {}
    for name in names:
        table = config.measurements.get(name)
        circuit = circuit_of(ezo[name][1]) if name in ezo else None
        labels[name] = table.label if table and table.label else ""
        default_unit = UNITS.get(name) or CIRCUIT_UNITS.get(circuit or "", "")
        units[name] = table.unit if table and table.unit else default_unit
        default_decimals = SEED_DECIMALS.get(name, CIRCUIT_DECIMALS.get(circuit or "", 2))
        given = table.decimals if table else None
        decimals[name] = default_decimals if given is None else given
        if name in ezo:
            circuits[name] = circuit
    return {
        "measurements": names,
        "labels": labels,
        "units": units,
        "decimals": decimals,
        "circuits": circuits,
    }
