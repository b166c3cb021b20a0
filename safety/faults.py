"""Fault codes and session outcomes: the stable vocabulary of the safety layer.

Owns: the names that appear in logs, the ledger, the status JSON and docs/hil.md.
Their string values are stored in the ledger, so renaming one is a data migration.
Does not own the checks that raise them (``supervisor``, ``interlock``, ``core``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class FaultCode(StrEnum):
    SKIN_OVERTEMP = "skin_overtemp"
    BOARD_OVERTEMP = "board_overtemp"
    SENSOR_OPEN = "sensor_open"
    SENSOR_SHORT = "sensor_short"
    SENSOR_RANGE = "sensor_out_of_range"
    SENSOR_DISAGREE = "sensor_disagree"
    TEMP_RISE_RATE = "temp_rise_rate"
    IRRADIANCE_MISMATCH = "irradiance_mismatch"
    IRRADIANCE_OVER_LIMIT = "irradiance_over_limit"
    STUCK_ON = "stuck_on"
    TELEMETRY_STALE = "telemetry_stale"
    BOARD_FAULT = "board_fault"
    BOARD_RESET = "board_reset"
    BOARD_NOT_ANSWERING = "board_not_answering"
    BOARD_DISCONNECTED = "board_disconnected"
    LEASE_EXPIRED = "lease_expired"
    PROTOCOL_VERSION = "protocol_version"
    CALIBRATION_CRC = "calibration_crc"
    BOARD_MISMATCH = "board_mismatch"
    RAIL_LOST = "rail_lost"
    INTERLOCK_REFUSED = "interlock_refused"
    LEDGER_WRITE_FAILED = "ledger_write_failed"
    SELF_TEST_FAILED = "self_test_failed"
    CONTROLLER_ERROR = "controller_error"


class WarningCode(StrEnum):
    """Conditions shown to the user that do not stop a session by themselves."""

    SKIN_TEMP_WARN = "skin_temp_warn"
    CONTACT_LOST = "contact_lost"
    BUTTON_STUCK = "button_stuck"
    LINK_ERRORS = "link_errors"
    CLOCK_JUMP = "clock_jump"


class Outcome(StrEnum):
    """How a session ended, as recorded in the ledger."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    FAULT = "fault"
    POWER_LOST = "power_lost"


FAULT_MESSAGES: Final[dict[FaultCode, str]] = {
    FaultCode.SKIN_OVERTEMP: "The pad got too warm on the skin. The light is off.",
    FaultCode.BOARD_OVERTEMP: "The pad's electronics got too hot. The light is off.",
    FaultCode.SENSOR_OPEN: "A skin temperature sensor is disconnected.",
    FaultCode.SENSOR_SHORT: "A skin temperature sensor is shorted.",
    FaultCode.SENSOR_RANGE: "A temperature sensor reads outside its possible range.",
    FaultCode.SENSOR_DISAGREE: "The two skin temperature sensors disagree.",
    FaultCode.TEMP_RISE_RATE: "The skin temperature is rising too fast.",
    FaultCode.IRRADIANCE_MISMATCH: "The light output does not match what was asked for.",
    FaultCode.IRRADIANCE_OVER_LIMIT: (
        "The light was stronger than the device's maximum. Power was cut."
    ),
    FaultCode.STUCK_ON: "The pad emitted light when it should have been off. Power was cut.",
    FaultCode.TELEMETRY_STALE: "The pad stopped reporting its state.",
    FaultCode.BOARD_FAULT: "The pad's driver board reported a fault.",
    FaultCode.BOARD_RESET: "The pad's driver board restarted during a session.",
    FaultCode.BOARD_NOT_ANSWERING: "The pad's driver board does not answer commands.",
    FaultCode.BOARD_DISCONNECTED: "The pad is disconnected.",
    FaultCode.LEASE_EXPIRED: (
        "The pad turned the light off because the controller stopped renewing it."
    ),
    FaultCode.PROTOCOL_VERSION: "The pad's firmware speaks an incompatible protocol version.",
    FaultCode.CALIBRATION_CRC: "The pad's calibration data is damaged.",
    FaultCode.RAIL_LOST: (
        "The pad's LED power does not stay on (its safety circuit or its line). "
        "The light is off; have the pad checked."
    ),
    FaultCode.BOARD_MISMATCH: (
        "The pad's driver board is not the kind this controller was started for. "
        "The light stays off."
    ),
    FaultCode.INTERLOCK_REFUSED: "An output command outside the prescription was refused.",
    FaultCode.LEDGER_WRITE_FAILED: "The treatment record could not be saved.",
    FaultCode.SELF_TEST_FAILED: "The pad failed its self-test.",
    FaultCode.CONTROLLER_ERROR: "The controller hit an internal error. The light is off.",
}
