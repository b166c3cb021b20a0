"""Run a command under the seccomp part of a systemd unit's sandbox, without systemd.

Usage: ``python sandbox_exec.py UNIT_FILE -- COMMAND...``

Owns: reading the unit's ``SystemCallFilter=`` lines (an allow list, then ``~`` lines
taking groups away), ``SystemCallErrorNumber=``, ``RestrictAddressFamilies=`` and
``MemoryDenyWriteExecute=``, expanding the ``@groups`` with ``systemd-analyze
syscall-filter`` (the same tables systemd uses), and loading the equivalent filters
with libseccomp before exec'ing the command. ``MemoryDenyWriteExecute=`` is emulated as
systemd 252 does it with seccomp: no ``mmap`` both writable and executable, no
``mprotect``/``pkey_mprotect`` adding execute, no ``shmat`` with SHM_EXEC.

Not emulated: namespaces, the device cgroup, file-system protections, capabilities.
"""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

SCMP_ACT_ALLOW: Final = 0x7FFF0000
CMP_EQ: Final = 4
CMP_GE: Final = 5
CMP_MASKED_EQ: Final = 7
PROT_WRITE: Final = 0x2
PROT_EXEC: Final = 0x4
SHM_EXEC: Final = 0o100000
AF_MAX: Final = 46
FAMILIES: Final = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}


class ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


def act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def service_settings(unit: Path) -> dict[str, list[str]]:
    """Every ``Key=Value`` of the [Service] section, repeated keys kept in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def syscall_groups() -> dict[str, list[str]]:
    """``systemd-analyze syscall-filter``: each @group and its members."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in out.splitlines():
        line = raw.strip()
        if raw.startswith("@"):
            current = groups.setdefault(line, [])
        elif line and not line.startswith("#") and current is not None:
            current.append(line)
    return groups


def expand(groups: dict[str, list[str]], names: list[str]) -> set[str]:
    found: set[str] = set()
    for name in names:
        found |= expand(groups, groups.get(name, [])) if name.startswith("@") else {name}
    return found


def allowed_syscalls(filters: list[str], groups: dict[str, list[str]]) -> set[str]:
    """systemd's rule: the first line sets an allow list, each ``~`` line removes."""
    allowed: set[str] = set()
    for line in filters:
        if line.startswith("~"):
            allowed -= expand(groups, line[1:].split())
        else:
            allowed |= expand(groups, line.split())
    return allowed


class Filter:
    """One libseccomp filter context."""

    def __init__(self, lib: ctypes.CDLL, default: int) -> None:
        self.lib = lib
        self.ctx = lib.seccomp_init(default)
        if not self.ctx:
            raise OSError("seccomp_init failed")

    def rule(self, action: int, name: str, *cmps: ArgCmp) -> bool:
        number = self.lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return False  # not a system call on this architecture
        array = (ArgCmp * len(cmps))(*cmps)
        result = self.lib.seccomp_rule_add_array(self.ctx, action, number, len(cmps), array)
        if result != 0:
            raise OSError(-result, f"seccomp rule for {name}")
        return True

    def load(self) -> None:
        result = self.lib.seccomp_load(self.ctx)
        if result != 0:
            raise OSError(-result, "seccomp_load")


def _libseccomp() -> ctypes.CDLL:
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    )
    lib.seccomp_load.argtypes = (ctypes.c_void_p,)
    return lib


def _argument_filter(lib: ctypes.CDLL, settings: dict[str, list[str]]) -> Filter:
    """W^X and the address families: refusals by argument, everything else allowed."""
    flt = Filter(lib, SCMP_ACT_ALLOW)
    if settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        eperm = act_errno(errno.EPERM)
        flt.rule(
            eperm, "mmap", ArgCmp(2, CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC)
        )
        flt.rule(eperm, "mprotect", ArgCmp(2, CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        flt.rule(eperm, "pkey_mprotect", ArgCmp(2, CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        flt.rule(eperm, "shmat", ArgCmp(2, CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC))
    families = " ".join(settings.get("RestrictAddressFamilies", [])).split()
    if families:
        allowed = {FAMILIES[name] for name in families}
        refuse = act_errno(errno.EAFNOSUPPORT)
        for family in range(AF_MAX):
            if family not in allowed:
                flt.rule(refuse, "socket", ArgCmp(0, CMP_EQ, family, 0))
        flt.rule(refuse, "socket", ArgCmp(0, CMP_GE, AF_MAX, 0))
    return flt


def install(unit: Path) -> int:
    """Load the unit's filters into this process; the number of system calls allowed."""
    settings = service_settings(unit)
    lib = _libseccomp()
    code = getattr(errno, settings.get("SystemCallErrorNumber", ["EPERM"])[-1])
    allowed = allowed_syscalls(settings.get("SystemCallFilter", []), syscall_groups())
    allow_list = Filter(lib, act_errno(code))
    count = sum(allow_list.rule(SCMP_ACT_ALLOW, name) for name in sorted(allowed))
    # The argument filter first: the allow list refuses seccomp() itself.
    _argument_filter(lib, settings).load()
    allow_list.load()
    return count


def main(argv: list[str]) -> None:
    split = argv.index("--")
    unit, command = Path(argv[0]), argv[split + 1 :]
    count = install(unit)
    sys.stderr.write(f"sandbox of {unit.name}: {count} system calls allowed\n")
    sys.stderr.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    if not sys.platform.startswith("linux"):
        raise SystemExit("Linux only")
    main(sys.argv[1:])
