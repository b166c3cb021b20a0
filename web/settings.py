"""What one running page knows: its settings and its in-memory state, built once.

Owns: ``WebSettings`` (the state directory, the site configuration, the password hash
or None for "no login", TLS or not, the Host names accepted, the clock, the control
socket's timeout, the size caps, and without a password the local users it serves)
and ``WebState`` (the sessions, the login limiter and its lock, and the forms' answers
waiting for their page, the last form of each session (a repeat at once is answered as
the first), shared by every request). Does not own the rules that use them
(``web.guard``) nor the pages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from web.flash import FlashStore
from web.local_users import LocalUsers
from web.repeats import FormRepeats
from web.sessions import LoginLimiter, SessionStore

LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_PORT: Final = 65535
"""The highest TCP port: for ``--port``, and for the port in a Host header."""
MAX_BODY_BYTES: Final = 80 * 1024
"""Any request body: a prescription upload (``MAX_UPLOAD_BYTES``) and its form around it."""
MAX_UPLOAD_BYTES: Final = 64 * 1024
"""A prescription file; the profile loader itself refuses anything over 16 KiB."""
CONTROL_TIMEOUT_S: Final = 6.0
INSTALL_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class WebSettings:
    state_dir: Path
    site_config: Path | None = None
    tz: str | None = None  # the patient's zone for the course and diary (None: $TZ, system)
    password_hash: str | None = None  # None: no login (only ever on loopback)
    tls: bool = False
    local_users: LocalUsers | None = None  # set: only these local users (no password)
    allowed_hosts: frozenset[str] | None = LOOPBACK_HOSTS  # None: any Host header
    clock: Callable[[], float] = time.monotonic
    control_timeout_s: float = CONTROL_TIMEOUT_S
    install_timeout_s: float = INSTALL_TIMEOUT_S
    max_body_bytes: int = MAX_BODY_BYTES
    max_upload_bytes: int = MAX_UPLOAD_BYTES

    @property
    def login_required(self) -> bool:
        return self.password_hash is not None


@dataclass
class WebState:
    settings: WebSettings
    sessions: SessionStore = field(init=False)
    limiter: LoginLimiter = field(init=False)
    login_lock: asyncio.Lock = field(init=False)
    flashes: FlashStore = field(init=False)
    repeats: FormRepeats = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = SessionStore(self.settings.clock)
        self.flashes = FlashStore(self.settings.clock)
        self.repeats = FormRepeats(self.settings.clock)
        self.limiter = LoginLimiter(self.settings.clock)
        self.login_lock = asyncio.Lock()
