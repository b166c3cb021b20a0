"""The adherence rule and how a site may tighten it (and only tighten it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from care.adherence import DEFAULT_RULE, AdherenceRule, SiteConfigError, rule_from_site
from tests.profiles.site_file_fixture import REFUSED_KINDS, refused_site_file


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_rule_is_the_prescribed_count_at_90_percent() -> None:
    assert AdherenceRule(0.9, 0) == DEFAULT_RULE
    assert DEFAULT_RULE.on_target(3, 3) and not DEFAULT_RULE.on_target(2, 3)
    assert "at least 90% of its planned fluence" in DEFAULT_RULE.describe()


def test_no_site_file_or_no_course_table_is_the_default(tmp_path: Path) -> None:
    assert rule_from_site(None) == DEFAULT_RULE
    assert rule_from_site(_site(tmp_path, "[limits]\n")) == DEFAULT_RULE


def test_a_site_tightens_both_values(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        "[course]\nmin_fluence_fraction = 0.95\nmin_sessions_per_week = 4\n"
        'irls_wording = "w.toml"\n',
    )
    rule = rule_from_site(site)
    assert rule == AdherenceRule(0.95, 4)
    assert rule.weekly_target(3) == 4 and rule.weekly_target(5) == 5
    assert "at least 4, set by the clinic" in rule.describe()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "min_fluence_fraction = 0.8",
            "min_fluence_fraction = 0.8: must be a number from 0.9 to 1",
        ),
        ("min_fluence_fraction = 1.5", "must be a number from 0.9 to 1"),
        ("min_fluence_fraction = nan", "must be a number from 0.9 to 1"),
        ("min_fluence_fraction = true", "must be a number from 0.9 to 1"),
        ("min_fluence_fraction = 1e999", "must be a number from 0.9 to 1"),
        (f"min_fluence_fraction = {'1' * 400}", "must be a number from 0.9 to 1"),
        ('min_fluence_fraction = "0.95"', "must be a number from 0.9 to 1"),
        ("min_sessions_per_week = 0", "min_sessions_per_week = 0: must be a whole number from 1"),
        ("min_sessions_per_week = 8", "must be a whole number from 1 to 7"),
        ("min_sessions_per_week = 3.0", "must be a whole number from 1 to 7"),
        ("min_sessions_per_week = false", "must be a whole number from 1 to 7"),
        (
            "min_fluence = 0.95",
            "unknown setting 'min_fluence'. Did you mean 'min_fluence_fraction'?",
        ),
        ("colour = 1", "unknown setting 'colour'.$"),
    ],
)
def test_bad_site_values_are_refused_clearly(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(SiteConfigError, match=message):
        rule_from_site(_site(tmp_path, f"[course]\n{line}\n"))


def test_a_broken_or_unreadable_site_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SiteConfigError, match="is not valid TOML"):
        rule_from_site(_site(tmp_path, "[course\n"))
    with pytest.raises(SiteConfigError, match="'course' must be a table"):
        rule_from_site(_site(tmp_path, "course = 3\n"))
    with pytest.raises(SiteConfigError, match="Cannot read the site configuration"):
        rule_from_site(tmp_path / "missing.toml")
    with pytest.raises(SiteConfigError, match=r"x \(line 2\) is a number with far too many"):
        rule_from_site(_site(tmp_path, f"[course]\nx = {'1' * 5000}\n"))


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", REFUSED_KINDS)
def test_the_site_file_readers_refusals_are_site_config_errors(tmp_path: Path, kind: str) -> None:
    path, words = refused_site_file(tmp_path, kind)
    with pytest.raises(SiteConfigError) as caught:
        rule_from_site(path)
    assert str(caught.value).startswith(f"Cannot read the site configuration {path}: {words}")
