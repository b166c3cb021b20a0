"""The JSON-line command vocabulary of the pty simulator (documented in docs/hil.md).

Owns: checking one decoded JSON command and applying it to a SimBoard. Does not own
the pty, stdin or stdout (``pty_runner.py``); a bad command raises CommandError,
which the runner reports as an ``error`` event without stopping.
"""

from __future__ import annotations

from typing import Final

from hil.sim.board import SimBoard
from hil.sim.faults import InjectionError

QUIT: Final = "quit"
AMBIENT_C_MIN: Final = -20.0
AMBIENT_C_MAX: Final = 60.0
"""The room temperatures the model is for (NaN or 1e6 °C would end the simulator)."""
_SETTABLE: Final = {"ambient_c": (int, float), "contact": (bool,), "blanket": (bool,)}


class CommandError(ValueError):
    """A JSON-line command that cannot be applied. Carries ``cmd``."""

    def __init__(self, message: str, cmd: object = None) -> None:
        super().__init__(message)
        self.cmd = cmd


def apply_command(
    board: SimBoard, command: object, *, rail_locked: bool = False
) -> dict[str, object] | str | None:
    """Apply ``command``; return a reply event, ``QUIT``, or None."""
    if not isinstance(command, dict) or not isinstance(command.get("cmd"), str):
        raise CommandError('a command is a JSON object with a string "cmd"')
    cmd = command["cmd"]
    args = {key: value for key, value in command.items() if key != "cmd"}
    handler = _HANDLERS.get(cmd)
    if handler is None:
        raise CommandError(f"unknown command {cmd!r}", cmd)
    if cmd == "rail" and rail_locked:
        raise CommandError("the rail follows --rail-file; write that file instead", cmd)
    try:
        return handler(board, args)
    except (InjectionError, ValueError, TypeError) as exc:
        raise CommandError(f"{cmd}: {exc}", cmd) from exc


def _inject(board: SimBoard, args: dict[str, object]) -> None:
    kind = args.pop("fault", None)
    if not isinstance(kind, str):
        raise CommandError('inject needs "fault": KIND', "inject")
    board.inject(kind, **args)


def _set(board: SimBoard, args: dict[str, object]) -> None:
    if not args:
        raise CommandError("set needs one of ambient_c, contact, blanket", "set")
    for key, value in args.items():
        types = _SETTABLE.get(key)
        if types is None:
            raise CommandError(f"set: unknown setting {key!r}", "set")
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise CommandError(f"set: {key}={value!r} has the wrong type", "set")
    if "ambient_c" in args:
        board.set_ambient(check_ambient_c(float(args["ambient_c"])))  # type: ignore[arg-type]
    if "blanket" in args:
        board.set_blanket(bool(args["blanket"]))
    if "contact" in args:
        board.set_contact(bool(args["contact"]))


def check_ambient_c(ambient_c: float) -> float:
    """``ambient_c`` if it is a room temperature the model is for, else ValueError."""
    if not AMBIENT_C_MIN <= ambient_c <= AMBIENT_C_MAX:  # NaN fails too
        raise ValueError(
            f"the room temperature must be between {AMBIENT_C_MIN:g} and {AMBIENT_C_MAX:g} °C,"
            f" not {ambient_c:g}"
        )
    return ambient_c


def _press(board: SimBoard, args: dict[str, object]) -> None:
    board.press(str(args.get("kind", "short")))


def _button(board: SimBoard, args: dict[str, object]) -> None:
    down = args.get("down")
    if not isinstance(down, bool):
        raise CommandError('button needs "down": true|false', "button")
    board.button(down)


def _clear(board: SimBoard, args: dict[str, object]) -> None:
    board.clear_injections()


def _state(board: SimBoard, args: dict[str, object]) -> dict[str, object]:
    return {"event": "state", **board.state()}


def _reset(board: SimBoard, args: dict[str, object]) -> None:
    board.reset(str(args.get("reason", "power_on")))


def _rail(board: SimBoard, args: dict[str, object]) -> None:
    enabled = args.get("enabled")
    if not isinstance(enabled, bool):
        raise CommandError('rail needs "enabled": true|false', "rail")
    board.set_rail(enabled)


def _quit(board: SimBoard, args: dict[str, object]) -> str:
    return QUIT


_HANDLERS: Final = {
    "inject": _inject,
    "set": _set,
    "press": _press,
    "button": _button,
    "clear": _clear,
    "state": _state,
    "reset": _reset,
    "rail": _rail,
    "quit": _quit,
}
