"""``nirpad profile sign`` reads the clinic's key file and the profile only when safe:
a key others may read or write, a FIFO, an oversized file or a public key is refused
with one line, a non-zero exit and no output written."""

from __future__ import annotations

import errno
import os
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from profiles import keyfiles
from profiles.errors import SigningError
from profiles.keyfiles import MAX_KEY_FILE_BYTES, read_private_key_file
from profiles.loader import load_profile_bytes
from profiles.signing import TrustStore, sign_profile
from tests.profiles.conftest import run_cli


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    """A key pair made by ``nirpad profile keygen``: ``k.key`` (0600) and ``k.pub``."""
    assert run_cli(["keygen", "--out", str(tmp_path / "k")]) == 0
    return tmp_path / "k.key"


@pytest.fixture
def sign(
    tmp_path: Path, base_text: str, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """Run ``sign`` with ``-o signed.toml``; (exit code, stdout, stderr). Nothing may be
    written when it fails."""
    default_rx = write(base_text)

    def _sign(key: Path, rx: Path = default_rx) -> tuple[int, str, str]:
        out = tmp_path / "signed.toml"
        capsys.readouterr()  # what keygen printed
        code = run_cli(["sign", str(rx), "--key", str(key), "--key-id", "k", "-o", str(out)])
        captured = capsys.readouterr()
        if code != 0:
            assert not out.exists()
        return code, captured.out, captured.err

    return _sign


def test_a_keygen_key_signs(key_path: Path, sign: Callable[..., tuple[int, str, str]]) -> None:
    assert sign(key_path) == (0, "", "")
    assert isinstance(read_private_key_file(key_path), Ed25519PrivateKey)


@pytest.mark.parametrize(
    "mode", [0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o707], ids=lambda mode: f"{mode:04o}"
)
def test_a_key_file_others_may_read_or_write_is_refused(
    key_path: Path, sign: Callable[..., tuple[int, str, str]], mode: int
) -> None:
    key_path.chmod(mode)
    code, out, err = sign(key_path)
    assert (code, out) == (1, "")
    assert err == (
        f"nirpad: cannot sign: the key file {key_path} has mode {mode:04o}: group or others "
        f"may read or write it; run chmod 600 {key_path}\n"
    )


@pytest.mark.timeout(10)  # before the fix, opening the FIFO blocked until a writer came
def test_a_key_path_that_is_a_fifo_is_refused_at_once(
    tmp_path: Path, sign: Callable[..., tuple[int, str, str]]
) -> None:
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    assert sign(fifo) == (
        1,
        "",
        f"nirpad: cannot sign: the key file {fifo} is not a regular file (a named pipe); refused\n",
    )


def test_a_key_file_replaced_by_a_fifo_after_the_stat_is_refused(
    key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from profiles import keyfiles

    real_fstat = os.fstat

    def fifo_fstat(fd: int) -> os.stat_result:
        info = list(real_fstat(fd))
        info[0] = 0o010600  # S_IFIFO | 0600
        return os.stat_result(info)

    monkeypatch.setattr(keyfiles.os, "fstat", fifo_fstat)
    with pytest.raises(SigningError, match=r"is not a regular file \(a named pipe\)"):
        read_private_key_file(key_path)


def test_a_key_file_over_the_cap_is_refused(
    key_path: Path, sign: Callable[..., tuple[int, str, str]]
) -> None:
    with key_path.open("ab") as handle:  # still a valid key to the PEM reader
        handle.write(b"#" * MAX_KEY_FILE_BYTES)
    size = key_path.stat().st_size
    assert sign(key_path) == (
        1,
        "",
        f"nirpad: cannot sign: the key file {key_path} is larger than 4 KiB ({size} bytes); "
        f"an Ed25519 key file is about 120 bytes\n",
    )


def test_a_huge_key_file_is_not_read(key_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from profiles import keyfiles

    with key_path.open("r+b") as handle:
        handle.truncate(64 << 20)  # sparse: 64 MiB
    monkeypatch.setattr(keyfiles.os, "open", _never)
    with pytest.raises(SigningError, match="is larger than 4 KiB"):
        read_private_key_file(key_path)


def _never(*args: object) -> int:
    raise AssertionError("opened")


def _ec_private_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ed25519_public_pem() -> bytes:
    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _encrypted_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (_ed25519_public_pem(), "holds a public key; sign with the private key (.key)"),
        (
            b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA x@y\n",
            "holds a public key; sign with the private key (.key)",
        ),
        (_ec_private_pem(), "is not an Ed25519 private key"),
        (_encrypted_pem(), "is encrypted; use the unencrypted key that keygen writes"),
        (b"hello\n", "is not a PEM private key"),
        (b"", "is not a PEM private key"),
    ],
    ids=["public-pem", "openssh-public", "ec-private", "encrypted", "text", "empty"],
)
def test_anything_but_an_ed25519_private_key_is_refused(
    tmp_path: Path, sign: Callable[..., tuple[int, str, str]], content: bytes, words: str
) -> None:
    key = tmp_path / "other.key"
    key.write_bytes(content)
    key.chmod(0o600)
    code, out, err = sign(key)
    assert (code, out) == (1, "")
    assert err == f"nirpad: cannot sign: the key file {key} {words}\n"


@pytest.mark.parametrize("mode", [0o644, 0o600], ids=lambda mode: f"{mode:04o}")
def test_the_public_half_of_a_keygen_pair_is_refused_as_public(
    key_path: Path, sign: Callable[..., tuple[int, str, str]], mode: int
) -> None:
    public = key_path.with_suffix(".pub")
    public.chmod(mode)
    assert sign(public) == (
        1,
        "",
        f"nirpad: cannot sign: the key file {public} holds a public key; sign with the private key "
        f"(.key)\n",
    )


@pytest.mark.timeout(10)  # before the fix, opening the FIFO blocked until a writer came
def test_a_profile_that_is_a_fifo_is_refused_at_once(
    tmp_path: Path, key_path: Path, sign: Callable[..., tuple[int, str, str]]
) -> None:
    fifo = tmp_path / "rx-fifo.toml"
    os.mkfifo(fifo)
    assert sign(key_path, fifo) == (
        1,
        "",
        f"nirpad: cannot sign: {fifo}: is not a regular file (a named pipe); refused\n",
    )


def test_an_oversized_profile_is_refused_from_its_size(
    tmp_path: Path, key_path: Path, sign: Callable[..., tuple[int, str, str]]
) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as handle:
        handle.truncate(1 << 20)  # sparse: 1 MiB; before the fix, read whole
    assert sign(key_path, big) == (
        1,
        "",
        f"nirpad: cannot sign: {big}: is larger than 16 KiB ({1 << 20} bytes); "
        "a prescription is about 1 kB\n",
    )


@pytest.mark.parametrize("alias", ["itself", "symlink", "hard link"])
def test_signing_onto_the_key_file_is_refused_and_the_key_kept(
    tmp_path: Path, base_text: str, write: Callable[..., Path], key_path: Path, alias: str
) -> None:
    key_before = key_path.read_bytes()
    out = {"itself": key_path, "symlink": tmp_path / "out.toml", "hard link": tmp_path / "h.toml"}
    if alias == "symlink":
        out[alias].symlink_to(key_path)
    elif alias == "hard link":
        os.link(key_path, out[alias])
    rx = write(base_text)
    code = run_cli(
        ["sign", str(rx), "--key", str(key_path), "--key-id", "k", "-o", str(out[alias])]
    )
    assert code == 1
    assert key_path.read_bytes() == key_before
    assert isinstance(read_private_key_file(key_path), Ed25519PrivateKey)


def test_signing_into_a_missing_folder_writes_nothing(
    tmp_path: Path,
    base_text: str,
    write: Callable[..., Path],
    key_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "no-such-folder" / "signed.toml"
    capsys.readouterr()
    code = run_cli(
        ["sign", str(write(base_text)), "--key", str(key_path), "--key-id", "k", "-o", str(out)]
    )
    assert (code, capsys.readouterr().err) == (
        1,
        f"nirpad: cannot sign: cannot write {out}: No such file or directory; nothing was "
        "written\n",
    )
    assert not out.parent.exists()


def test_signing_over_an_old_signed_file_replaces_it_whole(
    tmp_path: Path, base_text: str, write: Callable[..., Path], key_path: Path
) -> None:
    out = tmp_path / "signed.toml"
    out.write_text("an older prescription\n")
    rx = write(base_text)
    assert run_cli(["sign", str(rx), "--key", str(key_path), "--key-id", "k", "-o", str(out)]) == 0
    signed = out.read_text(encoding="utf-8")
    assert signed.startswith(base_text) and "older" not in signed
    assert "[signature]" in signed
    assert not list(tmp_path.glob(".signed.toml.*"))  # no temporary file left beside it


@pytest.mark.parametrize("failing", ["k.key", "k.pub"])
def test_keygen_on_a_full_disk_leaves_no_key_file_and_a_retry_works(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failing: str,
) -> None:
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(failing):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(keyfiles.os, "fsync", full)
    assert run_cli(["keygen", "--out", str(tmp_path / "k")]) == 1
    assert capsys.readouterr().err == (
        f"nirpad: cannot make the key pair: cannot write {tmp_path / failing}: the disk is full; "
        "nothing was written\n"
    )
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(keyfiles.os, "fsync", real_fsync)
    assert run_cli(["keygen", "--out", str(tmp_path / "k")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key", "k.pub"]


@pytest.mark.parametrize("out", ["", ".", "/", ".."])
def test_keygen_out_that_names_no_file_is_refused_in_words(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    out: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli(["keygen", "--out", out]) == 1
    assert capsys.readouterr().err == (
        "nirpad: cannot make the key pair: --out must end in a file name, like clinic-a-2026 "
        "(it writes clinic-a-2026.key and clinic-a-2026.pub)\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key_id", ["", "a b", "k" * 65, "k\udcff", "clinic\n"])
def test_a_key_id_that_cannot_be_one_is_named_in_the_refusal(
    key_path: Path,
    base_text: str,
    write: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    key_id: str,
) -> None:
    rx = write(base_text)
    capsys.readouterr()
    assert run_cli(["sign", str(rx), "--key", str(key_path), "--key-id", key_id]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == (
        "nirpad: cannot sign: the key id (--key-id, the public key's name in the site's "
        "[signing.trusted_keys]) must be letters, digits, '-', '_' or '.', at most 64\n"
    )


def test_ctrl_c_in_keygen_leaves_no_half_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def interrupted(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".pub"):
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(keyfiles.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        keyfiles.write_keypair(tmp_path / "k")
    assert list(tmp_path.iterdir()) == []


def test_signing_into_the_state_directory_is_refused_and_the_installed_file_kept(
    tmp_path: Path,
    base_text: str,
    write: Callable[..., Path],
    key_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    installed = state_dir / "prescription.toml"
    installed.write_text("the installed prescription\n")
    monkeypatch.setenv("NIRPAD_STATE_DIR", str(state_dir))
    capsys.readouterr()
    rx = write(base_text)
    code = run_cli(["sign", str(rx), "--key", str(key_path), "--key-id", "k", "-o", str(installed)])
    assert (code, capsys.readouterr().err) == (
        1,
        f"nirpad: cannot sign: cannot write {installed}: it is in the state directory {state_dir}, "
        "which holds the treatment record; choose another folder; nothing was written\n",
    )
    assert installed.read_text() == "the installed prescription\n"


def test_signing_to_a_file_needs_no_home_folder(
    tmp_path: Path,
    base_text: str,
    write: Callable[..., Path],
    key_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A clinic signing in a container with no home folder: there is no state directory
    to keep the output out of, and that must not stop the signing."""

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    for name in ("NIRPAD_STATE_DIR", "XDG_DATA_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    out = tmp_path / "signed.toml"
    rx = write(base_text)
    assert run_cli(["sign", str(rx), "--key", str(key_path), "--key-id", "k", "-o", str(out)]) == 0
    assert "[signature]" in out.read_text()


def test_keygen_prints_a_trust_line_that_trusts_the_key_under_its_id(
    tmp_path: Path, base_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key id with a dot is a valid one (``sign`` takes it), but written bare in TOML
    it is a dotted key: the printed line made a table ``clinic`` and the site refused
    its own key ("must be a base64 text"). The line must work as printed."""
    assert run_cli(["keygen", "--out", str(tmp_path / "clinic.a-2026")]) == 0
    out = capsys.readouterr().out
    trust_lines = out[out.index("[signing.trusted_keys]") :]
    store = TrustStore.from_mapping(tomllib.loads(trust_lines)["signing"])
    assert set(store.keys) == {"clinic.a-2026"}
    signed = sign_profile(base_text, read_private_key_file(tmp_path / "clinic.a-2026.key"),
                          "clinic.a-2026")  # fmt: skip
    assert load_profile_bytes(signed.encode(), "rx", trust=store).ok


@pytest.mark.parametrize("name", ["clinic a", "clinic\x1b[2J", "k" * 65, "-clinic"])
def test_keygen_refuses_a_name_that_cannot_be_a_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """The file name is the key id the trust line and ``sign --key-id`` use: a name
    ``sign`` refuses (or TOML cannot hold bare) made a pair no profile could be
    signed with under its printed id. Refused before anything is written."""
    assert run_cli(["keygen", "--out", str(tmp_path / name)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("nirpad: cannot make the key pair: the key id ")
    assert "\x1b" not in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
