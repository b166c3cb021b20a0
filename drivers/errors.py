"""Typed errors of the driver layer (the wire protocol and the board client).

Owns: the ``DriverError`` family. Every error carries the port it happened on and a short,
stable ``code`` string (it ends up in logs and the ledger, so renaming one is a data
migration). Does not own what the safety layer does about an error: every one of them
means "the host can no longer vouch for the board", and the safety layer turns the light
off.
"""

from __future__ import annotations

from drivers.protocol import NakCode


class DriverError(Exception):
    """Base of every error raised by ``drivers``; ``port`` and ``code`` say where and what."""

    def __init__(self, message: str, *, port: str, code: str) -> None:
        super().__init__(message)
        self.port = port
        self.code = code

    def __str__(self) -> str:
        return f"{self.args[0]} (port={self.port}, code={self.code})"


class BoardDisconnectedError(DriverError, ConnectionError):
    """The port failed on open, read or write (cable pulled, device gone, pty closed)."""


class DriverTimeoutError(DriverError, TimeoutError):
    """The board did not answer in time (handshake, or a command after all its retries)."""


class ProtocolVersionError(DriverError):
    """The board speaks a protocol version this host does not."""

    def __init__(
        self, message: str, *, port: str, board_version: int | None, host_version: int
    ) -> None:
        super().__init__(message, port=port, code="protocol_version")
        self.board_version = board_version
        self.host_version = host_version


class CalibrationCrcError(DriverError):
    """INFO's calibration table does not match its CRC: the table cannot be trusted."""

    def __init__(self, message: str, *, port: str, expected_crc: int, actual_crc: int) -> None:
        super().__init__(message, port=port, code="calibration_crc")
        self.expected_crc = expected_crc
        self.actual_crc = actual_crc


class UnsupportedPortError(DriverError, ValueError):
    """The port URL names a scheme pyserial does not know; there is no silent fallback."""


class CommandRejectedError(DriverError):
    """The board answered a blocking ``request`` with NAK; ``nak_code`` says why."""

    def __init__(self, message: str, *, port: str, nak_code: NakCode, seq: int) -> None:
        super().__init__(message, port=port, code=f"nak_{nak_code.name.lower()}")
        self.nak_code = nak_code
        self.seq = seq
