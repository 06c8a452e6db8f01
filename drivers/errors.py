"""The project's one exception tree, and the drivers' branch of it.

Everything the gateway, the drivers and the field tools raise on purpose is a
:class:`GatewayError`: catch that to catch ours and nothing else (a bug stays a
bug). Every error a serial line or a device can cause is a :class:`DriverError`.
Each carries a ``kind`` that names it in counters and in a reading's quality,
so the rest of the gateway never has to match on exception classes.
"""

from __future__ import annotations


class GatewayError(Exception):
    """The root of every error this project raises on purpose."""


class DriverError(GatewayError):
    """Base of everything the drivers raise on purpose."""

    kind: str = "exception"
    #: Worth sending the request again (after ``retry_after`` seconds).
    retryable: bool = False
    retry_after: float = 0.0


class ProtocolError(DriverError):
    """Bytes that do not form a valid frame or line."""

    kind = "garbage"
    retryable = True


class CRCError(ProtocolError):
    """A frame whose CRC does not match its contents."""

    kind = "crc"

    def __init__(self, frame: bytes, expected: int, received: int) -> None:
        super().__init__(
            f"CRC mismatch: frame {frame.hex(' ')} carries {received:04X}, expected {expected:04X}"
        )
        self.frame = frame
        self.expected = expected
        self.received = received


class DeviceError(DriverError):
    """The device answered, and the answer says it could not do it."""

    kind = "device_error"


class ModbusExceptionReply(DeviceError):
    """A Modbus exception response (function code with the high bit set)."""

    kind = "exception"

    NAMES = {
        0x01: "illegal function",
        0x02: "illegal data address",
        0x03: "illegal data value",
        0x04: "server device failure",
        0x05: "acknowledge",
        0x06: "server device busy",
        0x0A: "gateway path unavailable",
        0x0B: "gateway target device failed to respond",
    }
    #: Codes that mean "try again later" rather than "this request is wrong".
    RETRYABLE = frozenset({0x05, 0x06, 0x0A, 0x0B})

    def __init__(self, unit: int, function: int, code: int) -> None:
        name = self.NAMES.get(code, "unknown exception")
        super().__init__(f"unit {unit} function {function:#04x}: exception {code:#04x} ({name})")
        self.unit = unit
        self.function = function
        self.code = code
        self.retryable = code in self.RETRYABLE
        # Busy and acknowledge: the device is working, give it a moment.
        self.retry_after = 0.1 if code in (0x05, 0x06) else 0.0
        if code in (0x0A, 0x0B):
            self.kind = "timeout"


class EzoError(DeviceError):
    """An EZO circuit answered ``*ER``, or reported something unusable."""


class EzoUnknownCommand(EzoError):
    """``*ER``: the circuit does not know the command (or its firmware predates it)."""


class CircuitRebooted(DeviceError):
    """An EZO circuit announced a reset or wake (``*RS``, ``*RE``, ``*WA``).

    Its settings (continuous mode, outputs) must be applied again and the next
    reading discarded before values can be trusted, so the line must not simply
    send the request again: the sensor re-initialises first.
    """

    def __init__(self, status: str) -> None:
        super().__init__(f"circuit reported {status}: it restarted")
        self.status = status


class TransportError(DriverError):
    """The serial line itself failed: nothing trustworthy came back."""


class DeviceTimeout(TransportError):
    """No complete reply within the request's timeout."""

    kind = "timeout"
    retryable = True


class PortDisconnected(TransportError):
    """The port is closed, vanished or cannot be opened."""

    kind = "disconnected"

    def __init__(self, port: str, reason: str) -> None:
        super().__init__(f"{port}: {reason}")
        self.port = port
        self.reason = reason


class SettingError(DriverError, ValueError):
    """A driver setting that can never work (caught at configuration time)."""

    kind = "config"
