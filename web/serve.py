"""``nirpad web``: check where the page may listen, then serve it with uvicorn.

Owns: the rule for where the page listens (a loopback address needs nothing; any other
address needs a TLS certificate and key and a password set, or the page refuses to
start and says which is missing; a ``--host-name`` that is not a name alone is refused
too), ``nirpad web passwd`` (asks twice on a terminal, or
reads one line from a pipe; stores only the scrypt hash), and starting uvicorn with
the page's settings (``web.http_server``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import ipaddress
import logging
import os
import re
import socket
import ssl
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from firmware_host.course_inputs import CourseInputError, zone_named
from firmware_host.paths import (
    PathNameError,
    StateDirError,
    ensure_state_dir,
    resolve_state_dir,
    user_path,
)
from firmware_host.stdout_guard import done
from profiles.file_errors import os_error_text
from profiles.locator import printable
from web.local_users import LocalUsers
from web.passwords import (
    MAX_PASSWORD_CHARS,
    PasswordError,
    check_new_password,
    hash_password,
    password_path,
    read_password_hash,
    write_password_hash,
)
from web.settings import LOOPBACK_HOSTS, MAX_PORT, WebSettings

log = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
ROOT_PASSWD_WARNING: Final = (
    "nirpad web passwd: warning: run as root; the file is given the state directory's "
    "group, but run it as the nirpad user next time (sudo -u nirpad nirpad web passwd)"
)
NO_PASSWORD_WARNING: Final = (
    "nirpad web: warning: no password is set, so the page serves only the local users who may "
    "control the pad (root, the pad's user, the nirpad group), as the command line does; "
    "to let another account use it, add it to that group or set a password: "
    "nirpad web passwd"
)


class ListenRefusedError(ValueError):
    """Serving on this address is not allowed with these options (the message says why)."""


def is_loopback(listen: str) -> bool:
    if listen in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(listen.strip("[]")).is_loopback
    except ValueError:
        return False


def host_key(name: str) -> str:
    """A host name or address as the Host check compares it: an address in its canonical
    form (``2001:0DB8::1`` → ``2001:db8::1``, as browsers send it), a name in lower case."""
    bare = name.strip("[]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare.lower()


_LABEL: Final = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME: Final = re.compile(rf"(?=.{{1,253}}\.?$){_LABEL}(\.{_LABEL})*\.?")
"""A DNS name in lower case (``host_key``), as a browser sends it in the Host header."""


def checked_host_names(names: Sequence[str]) -> frozenset[str]:
    """The ``--host-name``s as the Host check compares them (``host_key``); a name with
    a port, a scheme or a path, or no name at all, is refused: the Host check compares
    the name alone, so the page would answer no one (``ListenRefusedError``)."""
    keys = set()
    for name in names:
        key = host_key(name)
        if _HOST_NAME.fullmatch(key) is None and not _is_address(key):
            raise ListenRefusedError(
                f"--host-name '{printable(name)}' is not a host name: give the name alone, "
                "as the browser's address shows it between // and any :port (pad.local, "
                "192.168.1.20)"
            )
        keys.add(key)
    return frozenset(keys)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_wildcard(listen: str) -> bool:
    try:
        return ipaddress.ip_address(listen.strip("[]")).is_unspecified
    except ValueError:
        return False


def settings_for(
    state_dir: Path,
    listen: str,
    tls_cert: str | None,
    tls_key: str | None,
    site_config: str | None = None,
    tz: str | None = None,
    host_names: Sequence[str] = (),
) -> WebSettings:
    """The page's settings, or ``ListenRefusedError`` when the address needs more.

    The Host names accepted: on loopback ``LOOPBACK_HOSTS`` and the listen address; off
    it the listen address (unless it is a wildcard) and ``host_names``."""
    if (tls_cert is None) != (tls_key is None):
        raise ListenRefusedError("--tls-cert and --tls-key go together; give both or neither")
    try:
        password_hash = read_password_hash(state_dir)
    except PasswordError as exc:
        raise ListenRefusedError(str(exc)) from exc
    site = None if site_config is None else user_path(site_config)
    tls = tls_cert is not None
    names = checked_host_names(host_names)
    own = frozenset() if _is_wildcard(listen) else frozenset({host_key(listen)})
    if is_loopback(listen):
        local_users = LocalUsers(state_dir) if password_hash is None else None
        return WebSettings(
            state_dir, site_config=site, tz=tz, password_hash=password_hash, tls=tls,
            allowed_hosts=LOOPBACK_HOSTS | own | names, local_users=local_users,
        )  # fmt: skip
    missing = []
    if not tls:
        missing.append("a TLS certificate and key (--tls-cert FILE --tls-key FILE)")
    if password_hash is None:
        missing.append("a password (set one with `nirpad web passwd`)")
    if not (own | names):
        missing.append("the name the browser uses for the pad (--host-name NAME)")
    if missing:
        raise ListenRefusedError(
            f"serving on {listen} (not this machine only) needs " + " and ".join(missing)
        )
    return WebSettings(
        state_dir, site_config=site, tz=tz, password_hash=password_hash, tls=True,
        allowed_hosts=own | names,
    )  # fmt: skip


def start_problem(args: argparse.Namespace) -> str | None:
    """What keeps ``nirpad web`` from serving with these options, in one sentence."""
    if not 1 <= args.port <= MAX_PORT:
        return f"--port must be between 1 and {MAX_PORT}, not {args.port}"
    if args.tz is not None:
        try:
            zone_named(args.tz)
        except CourseInputError as exc:
            return f"--tz: {exc}"
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not os.access(path, os.R_OK):
            return f"{option} {path} cannot be read (missing, or not readable by this user)"
        if path is not None and not os.path.isfile(path):  # a named pipe: OpenSSL would wait
            return f"{option} {path} is not a file (a folder, a named pipe or a device)"
    if args.tls_cert is not None and args.tls_key is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                args.tls_cert, args.tls_key, password=_no_key_password
            )
        except KeyPasswordError:
            return (
                f"--tls-key {args.tls_key} is encrypted, and the page cannot ask for its "
                "passphrase (it runs as a service); give it an unencrypted key "
                "(openssl pkey -in KEY -out KEY.plain), readable only by its user"
            )
        except (OSError, ssl.SSLError) as exc:
            return (
                f"--tls-cert {args.tls_cert} and --tls-key {args.tls_key} do not go together "
                f"or are not PEM ({exc})"
            )
    return None


class KeyPasswordError(Exception):
    """The TLS key asked for a passphrase."""


def _no_key_password() -> bytes:
    """Called only for an encrypted key: refuse it, never prompt on a terminal."""
    raise KeyPasswordError


def main(args: argparse.Namespace) -> int:
    """Serve the page, or refuse to start with one line and ``EXIT_USAGE``: the unit's
    ``RestartPreventExitStatus`` then keeps systemd from retrying what cannot work."""
    try:
        state_dir = resolve_state_dir(args.state_dir)
    except PathNameError as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "passwd":
        return set_password(state_dir)
    problem = start_problem(args)
    try:
        if problem is not None:
            raise ListenRefusedError(problem)
        settings = settings_for(
            state_dir, args.listen, args.tls_cert, args.tls_key, args.site_config, args.tz,
            args.host_name or (),
        )  # fmt: skip
    except (ListenRefusedError, PathNameError) as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.login_required:
        print(NO_PASSWORD_WARNING, file=sys.stderr, flush=True)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    with _matplotlib_config_dir():
        return serve(settings, args.listen, args.port, args.tls_cert, args.tls_key)


@contextlib.contextmanager
def _matplotlib_config_dir() -> Iterator[None]:
    """The report's charts need a matplotlib cache: never $HOME (none under the unit),
    but a temporary directory for the life of the page, removed when it ends (the state
    directory is read-only to the page). A set ``MPLCONFIGDIR`` is kept."""
    if os.environ.get("MPLCONFIGDIR"):
        yield
        return
    before = os.environ.get("MPLCONFIGDIR")
    with tempfile.TemporaryDirectory(prefix="nirpad-web-mpl-") as path:
        os.environ["MPLCONFIGDIR"] = path
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("MPLCONFIGDIR", None)
            else:
                os.environ["MPLCONFIGDIR"] = before


def serve(
    settings: WebSettings, listen: str, port: int, tls_cert: str | None, tls_key: str | None
) -> int:
    import uvicorn

    from web.app import create_app
    from web.http_server import server_config

    scheme = "https" if tls_cert else "http"
    host = f"[{listen}]" if ":" in listen else listen
    try:
        listener = listening_socket(listen, port)
    except OSError as exc:
        print(f"nirpad: cannot serve on {host}:{port}: {_bind_problem(exc)}", file=sys.stderr)
        return EXIT_ERROR
    print(f"nirpad web: {scheme}://{host}:{port}/ for {settings.state_dir}", flush=True)
    config = server_config(create_app(settings), listen, port, tls_cert, tls_key)
    with listener:
        uvicorn.Server(config).run(sockets=[listener])
    return EXIT_OK


def listening_socket(listen: str, port: int) -> socket.socket:
    """The page's listening socket, bound before its address is printed: a port another
    program holds is said in one line, never a URL that leads to that program's page.
    As uvicorn binds it (address reuse, so a restart need not wait out TIME_WAIT)."""
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen, port))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_problem(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "another program is using that port; choose another with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "that address is not one of this machine's; check --listen"
    if exc.errno == errno.EACCES:
        return "this user may not use that port (below 1024); choose another with --port"
    return os_error_text(exc)


def set_password(state_dir: Path) -> int:
    """``nirpad web passwd``: ask (twice on a terminal), check, hash, store."""
    try:
        password = _read_new_password()
        check_new_password(password)
    except PasswordError as exc:
        print(f"nirpad: {exc}; the password was not changed", file=sys.stderr)
        return EXIT_USAGE
    if os.geteuid() == 0:
        print(ROOT_PASSWD_WARNING, file=sys.stderr)
    try:
        path = write_password_hash(ensure_state_dir(state_dir), hash_password(password))
    except StateDirError as exc:  # its own sentence names the folder
        print(f"nirpad: {exc}; the password was not changed", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(
            f"nirpad: cannot write the password file {password_path(state_dir)}: "
            f"{os_error_text(exc)}; "
            "the password was not changed",
            file=sys.stderr,
        )
        return EXIT_ERROR
    done(f"password set (scrypt hash in {path}); restart `nirpad web` to use it")
    return EXIT_OK


def _read_new_password() -> str:
    if not sys.stdin.isatty():  # at most one character more than a password may have
        return sys.stdin.readline(MAX_PASSWORD_CHARS + 1).rstrip("\r\n")
    first = getpass.getpass("New password for the caregiver's page: ")
    if getpass.getpass("The same again: ") != first:
        raise PasswordError("the two passwords differ")
    return first
