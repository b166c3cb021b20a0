"""The IRLS: bands at their edges, subscales from the clinic's split, the wording file."""

from __future__ import annotations

from pathlib import Path

import pytest

from care.diary_schema import DiaryError
from care.irls import (
    Band,
    Subscales,
    band_of,
    check_items,
    item_label,
    read_wording,
    wording_path,
)
from tests.profiles.site_file_fixture import REFUSED_KINDS, refused_site_file


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, Band.NONE),
        (1, Band.MILD),
        (10, Band.MILD),
        (11, Band.MODERATE),
        (20, Band.MODERATE),
        (21, Band.SEVERE),
        (30, Band.SEVERE),
        (31, Band.VERY_SEVERE),
        (40, Band.VERY_SEVERE),
    ],
)
def test_bands_at_their_edges(total: int, band: Band) -> None:
    assert band_of(total) is band


@pytest.mark.parametrize("total", [-1, 41])
def test_a_total_outside_0_to_40_has_no_band(total: int) -> None:
    with pytest.raises(ValueError, match="0-40"):
        band_of(total)


def test_check_items_sorts_a_complete_set() -> None:
    items = {k: 1 for k in range(10, 0, -1)}
    assert list(check_items(items)) == list(range(1, 11))


def test_subscales_sum_their_own_items() -> None:
    split = Subscales(frozenset({1, 2, 6}), frozenset({9, 10}))
    items = {k: 0 for k in range(1, 11)} | {1: 4, 2: 3, 6: 1, 9: 2, 10: 1, 3: 4}
    assert split.scores(items) == {"symptom_severity": 8, "symptom_impact": 3}


def test_neutral_labels_carry_no_wording() -> None:
    assert item_label(1) == "item 1 of 10, 0-4"
    assert item_label(10) == "item 10 of 10, 0-4"


WORDING = """
[items]
1 = "Clinic text one"
2 = "Clinic text two"

[subscales]
symptom_severity = [1, 2]
symptom_impact = [9, 10]
"""


def test_a_wording_file_gives_texts_and_the_split(tmp_path: Path) -> None:
    path = tmp_path / "irls.toml"
    path.write_text(WORDING, encoding="utf-8")
    wording = read_wording(path)
    assert item_label(2, wording) == "2. Clinic text two (0-4)"
    assert item_label(3, wording) == "item 3 of 10, 0-4"  # not supplied: neutral
    assert wording.subscales == Subscales(frozenset({1, 2}), frozenset({9, 10}))


def test_the_site_configuration_names_the_wording_file(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[limits]\n\n[course]\nirls_wording = "irls.toml"\n', encoding="utf-8")
    assert wording_path(site) == tmp_path / "irls.toml"
    site.write_text("[limits]\n", encoding="utf-8")
    assert wording_path(site) is None
    assert wording_path(None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[items]\n11 = "x"\n', "'11' is not one"),
        ("[items]\n1 = 3\n", "'1' is not one"),
        ('items = "x"\n', "'items' must be a table"),
        ('[items]\n1 = "two\\nlines"\n', "one line of text"),
        ("[subscales]\nsymptom_severity = [1]\n", "must give symptom_severity and symptom_impact"),
        (
            "[subscales]\nsymptom_severity = [1, 2]\nsymptom_impact = [2, 3]\n",
            r"cannot be in both subscales \(item 2\)",
        ),
        (
            "[subscales]\nsymptom_severity = [0]\nsymptom_impact = [2]\n",
            "symptom_severity must be a list of item numbers 1-10",
        ),
        ("[items\n", "is not valid TOML"),
    ],
)
def test_a_bad_wording_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "irls.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DiaryError, match=message):
        read_wording(path)


def test_a_missing_wording_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(DiaryError, match="Cannot read the IRLS wording file"):
        read_wording(tmp_path / "absent.toml")


@pytest.mark.timeout(10)  # a FIFO opened for reading blocks until a writer comes
@pytest.mark.parametrize("kind", REFUSED_KINDS)
def test_a_wording_file_is_read_as_safely_as_the_site_file(tmp_path: Path, kind: str) -> None:
    """The wording the patient reads comes from a file the site names: a FIFO, a folder,
    a huge file or one anyone on the pad may rewrite is refused, never read."""
    refused, words = refused_site_file(tmp_path, kind)
    path = refused.rename(tmp_path / "irls.toml")
    words = words.replace(str(refused), str(path))
    with pytest.raises(DiaryError) as caught:
        read_wording(path)
    assert str(caught.value).startswith(f"Cannot read the IRLS wording file {path}: {words}")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", REFUSED_KINDS)
def test_the_site_file_naming_the_wording_is_read_through_the_site_reader(
    tmp_path: Path, kind: str
) -> None:
    site, words = refused_site_file(tmp_path, kind)
    with pytest.raises(DiaryError, match="Cannot read the site configuration") as caught:
        wording_path(site)
    assert words in str(caught.value)


def test_a_wording_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "irls.toml"
    path.write_bytes(b'\xef\xbb\xbf[items]\n1 = "How bad is the urge to move?"\n')
    assert read_wording(path).items[1] == "How bad is the urge to move?"
