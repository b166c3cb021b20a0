"""The reminder's ``[remind]`` site settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from care.adherence import SiteConfigError
from care.remind import RemindSettings, remind_settings
from tests.profiles.site_file_fixture import REFUSED_KINDS, refused_site_file


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_site_file_means_no_hook(tmp_path: Path) -> None:
    assert remind_settings(None) == RemindSettings()
    assert remind_settings(_site(tmp_path, "[course]\n")) == RemindSettings((), 10.0)


def test_a_hook_and_its_timeout(tmp_path: Path) -> None:
    site = _site(tmp_path, '[remind]\nhook = ["/usr/local/bin/buzz", "3"]\nhook_timeout_s = 5\n')
    assert remind_settings(site) == RemindSettings(("/usr/local/bin/buzz", "3"), 5.0)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('hook = "buzz 3"', "hook must be a list of words"),
        ('hook = ["buzz", 3]', "hook must be a list of words"),
        ('hook = ["buzz", ""]', "hook must be a list of words"),
        ("hook = []", "hook is empty"),
        ('hook = ["b"]\nhook_timeout_s = 0', "hook_timeout_s = 0: must be a number of seconds"),
        ('hook = ["b"]\nhook_timeout_s = 61', "from 1 to 60"),
        ('hook = ["b"]\nhook_timeout_s = true', "from 1 to 60"),
        ('hook = ["b"]\nhook_timeout_s = inf', "from 1 to 60"),
        ('hook = ["b"]\nhook_timeout_s = 1e999', "from 1 to 60"),
        (f'hook = ["b"]\nhook_timeout_s = {"1" * 400}', "from 1 to 60"),
        ("command = 1", "unknown setting 'command'"),
    ],
)
def test_bad_remind_settings_are_refused(tmp_path: Path, lines: str, message: str) -> None:
    with pytest.raises(SiteConfigError, match=message):
        remind_settings(_site(tmp_path, f"[remind]\n{lines}\n"))


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", REFUSED_KINDS)
def test_a_site_file_others_may_write_runs_no_hook(tmp_path: Path, kind: str) -> None:
    """A hook is a command the reminder runs: a file others may write (or a FIFO, a
    directory, a file over 64 KiB) is refused, not read."""
    path, words = refused_site_file(tmp_path, kind)
    with pytest.raises(SiteConfigError) as caught:
        remind_settings(path)
    assert str(caught.value).startswith(f"Cannot read the site configuration {path}: {words}")
