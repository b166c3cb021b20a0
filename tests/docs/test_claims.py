"""What the documents state that a reader acts on, held against the code that decides it.

Each test reads one claim from README.md or docs/ (a figure, an option, a dependency's
range) and compares it with the constant, parser or file that makes it true, so a
change to one without the other fails here instead of misleading a caregiver, a
clinic or an engineer. The traceability of hazards to tests is
tests/reliability/test_hazards_trace.py; the protocol's examples are tests/drivers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _row(doc: str, row_id: str) -> str:
    """The Markdown table row of ``doc`` whose first cell is ``row_id``."""
    for line in _text(doc).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == row_id:
            return line
    raise AssertionError(f"{doc} has no row {row_id}")


def _number(text: str, pattern: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in {text[:200]!r}…"
    return float(match.group(1))


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--option`` of ``parser`` (its short forms and ``--help`` left out)."""
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--")} - {"--help"}


# --- docs/hazards.md: the figures each control states ---------------------------------


def test_the_hazard_controls_state_the_limits_the_code_enforces() -> None:
    from firmware_host.session import PAUSE_LIMIT_S
    from hil.sim import firmware
    from safety import limits
    from safety.core_session import CHECKPOINT_INTERVAL_S
    from safety.supervisor_checks import SupervisorSettings

    settings = SupervisorSettings()
    h01 = _row("docs/hazards.md", "H01")
    assert _number(h01, r"stops at (\d+) °C") == limits.SKIN_TEMP_STOP_C
    assert _number(h01, r"warns at (\d+) °C") == limits.SKIN_TEMP_WARN_C
    assert _number(h01, r"board cutoff at (\d+) °C skin") == firmware.SKIN_CUTOFF_C
    assert firmware.SKIN_CUTOFF_C == limits.BOARD_SKIN_CUTOFF_C
    h02 = _row("docs/hazards.md", "H02")
    assert _number(h02, r"faster than (\d+) °C/min") == limits.TEMP_RISE_MAX_C_PER_MIN
    h03 = _row("docs/hazards.md", "H03")
    assert _number(h03, r"in 0–(\d+) °C") == limits.SENSOR_VALID_MAX_C
    assert _number(h03, r"within (\d+) °C") == limits.SKIN_SENSOR_DISAGREE_MAX_C
    assert -_number(h03, r"outside −(\d+)…") == firmware.SENSOR_MIN_C
    assert _number(h03, r"…(\d+) °C") == firmware.SENSOR_MAX_C
    h04 = _row("docs/hazards.md", "H04")
    assert _number(h04, r"SW: board stop at (\d+) °C") == settings.board_stop_c
    clears = settings.board_stop_c - settings.board_clear_margin_c
    assert _number(h04, r"clears below (\d+) °C") == clears
    assert _number(h04, r"FW: board cutoff at (\d+) °C") == firmware.BOARD_CUTOFF_C
    assert firmware.BOARD_CUTOFF_C == limits.BOARD_TEMP_STOP_C
    h06 = _row("docs/hazards.md", "H06")
    assert _number(h06, r"on-time (\d+) min") * 60.0 == firmware.MAX_ON_TIME_S
    h08 = _row("docs/hazards.md", "H08")
    assert _number(h08, r"until (\d+) h after") == limits.MIN_INTERVAL_H
    h09 = _row("docs/hazards.md", "H09")
    assert _number(h09, r"at least every (\d+) s") == CHECKPOINT_INTERVAL_S
    h18 = _row("docs/hazards.md", "H18")
    assert _number(h18, r"at most (\d+) ms") == limits.LEASE_MAX_MS
    assert PAUSE_LIMIT_S == 600.0  # DESIGN §5: ten minutes paused end the session


# --- docs/profiles.md: the built-in prescriptions' dates ------------------------------


def test_the_builtins_dates_are_the_ones_the_guide_gives() -> None:
    from profiles.loader import load_profile_bytes
    from profiles.shipped import BUILTIN_IDS, builtin_text

    text = " ".join(_text("docs/profiles.md").split())
    stated = re.search(r"valid from (\S+) until the day before (\S+?)[,)]", text)
    assert stated, "docs/profiles.md no longer states the built-ins' dates"
    issued, expires = (dt.date.fromisoformat(d) for d in stated.groups())
    refused = re.search(
        r'from (\S+) a caregiver who installs one as shipped is refused \("(.+?)"\)', text
    )
    assert refused, "docs/profiles.md no longer states when the built-ins are refused"
    refused_on = dt.date.fromisoformat(refused.group(1))
    for profile_id in BUILTIN_IDS:
        rx = load_profile_bytes(builtin_text(profile_id).encode(), f"{profile_id}.toml").profile
        assert rx is not None
        assert (rx.issued, rx.expires) == (issued, expires), profile_id
        assert rx.validity_problem(refused_on) == refused.group(2)
        assert rx.validity_problem(refused_on - dt.timedelta(days=1)) is None


# --- docs/performance.md: the bench's options ------------------------------------------


def _option_table(doc: str, heading: str) -> dict[str, str]:
    """``{'--option': 'its row'}`` of the first table after ``heading`` in ``doc``."""
    lines = _text(doc).splitlines()
    start = lines.index(heading)
    rows: dict[str, str] = {}
    for line in lines[start:]:
        if rows and not line.startswith("|"):
            break
        match = re.match(r"\| `(--[\w-]+)", line)
        if match:
            rows[match.group(1)] = line
    return rows


def _parser_built_by(call: Callable[[], object]) -> argparse.ArgumentParser:
    """The parser ``call()`` builds, caught when it parses (nothing runs)."""
    seen: list[argparse.ArgumentParser] = []

    def caught(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> object:
        seen.append(self)
        raise SystemExit(0)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", caught)
        with contextlib.suppress(SystemExit):
            call()
    assert seen, "no parser was built"
    return seen[0]


def test_the_bench_option_table_lists_every_option_of_the_report() -> None:
    from hil.bench import report

    table = _option_table("docs/performance.md", "## Running it")
    assert set(table) == _options(_parser_built_by(lambda: report.main([])))
    only = re.findall(r"`(\w+)`", table["--only"].split("|")[2])
    assert only == list(report.COLLECTORS)


def test_the_simulator_option_table_lists_every_option() -> None:
    from hil.sim.__main__ import parse_args

    table = _option_table("docs/hil.md", "### Options")
    claims = {"--info-simulator", "--info-time-scale"}  # for the refusal's tests: in prose
    assert set(table) | claims == _options(_parser_built_by(lambda: parse_args([])))


# --- docs/soup.md: every dependency, with the range pyproject.toml pins ---------------


def _soup_rows() -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in _text("docs/soup.md").splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]


def _names(cell: str) -> set[str]:
    return {re.sub(r"[-_.]+", "-", n).lower() for n in re.findall(r"[\w.-]+", cell)}


def _requirements() -> list[str]:
    project = tomllib.loads(_text("pyproject.toml"))["project"]
    extras = project["optional-dependencies"].values()
    return [*project["dependencies"], *(r for extra in extras for r in extra)]


@pytest.mark.parametrize("requirement", _requirements())
def test_every_dependency_is_in_the_soup_list_with_its_range(requirement: str) -> None:
    match = re.fullmatch(r"([\w.-]+)(.*)", requirement)
    assert match
    name, spec = re.sub(r"[-_.]+", "-", match.group(1)).lower(), match.group(2)
    stated = ", ".join(
        p.strip().replace(">=", "≥ ").replace("<", "< ") for p in spec.split(",") if p.strip()
    )
    rows = [r for r in _soup_rows() if name in _names(r[0])]
    assert rows, f"docs/soup.md has no row for {name}"
    assert any(r[1].startswith(stated) for r in rows), (name, stated, [r[1] for r in rows])


# --- README.md: the demo -----------------------------------------------------------------


def test_the_readme_and_the_help_say_how_long_the_demo_takes() -> None:
    from firmware_host import demo
    from firmware_host.cli import build_parser
    from safety.limits import SESSION_MAX_MIN

    seconds = SESSION_MAX_MIN * 60.0 / demo.TIME_SCALE  # the built-in is a 30-min session
    readme = _number(_text("README.md"), r"simulated board \(about (\d+) seconds\)")
    assert readme == seconds
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    help_text = next(c.help for c in sub._choices_actions if c.dest == "demo")
    assert help_text is not None and f"{seconds:g}-second" in help_text


def _readme_section(heading: str) -> str:
    text = _text("README.md")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_readme_layout_names_every_package() -> None:
    find = tomllib.loads(_text("pyproject.toml"))["tool"]["setuptools"]["packages"]["find"]
    packages = {name.rstrip("*") for name in find["include"]}
    listed = set(re.findall(r"(?m)^([\w]+)/ ", _readme_section("Layout")))
    assert packages <= listed, f"README.md's Layout leaves out {sorted(packages - listed)}"


def test_the_readme_lists_every_document() -> None:
    named = set(re.findall(r"`docs/([\w-]+\.md)`", _readme_section("Documents")))
    docs = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert docs <= named, f"README.md's Documents leaves out {sorted(docs - named)}"


# --- every `nirpad …` command line in the documents uses options that exist -----------


def _command_lines(text: str) -> Iterator[tuple[int, str]]:
    """Each ``nirpad …`` in a code block or inline code: (line number, command)."""
    in_block = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            in_block = not in_block
        elif in_block:
            match = re.search(r"(?:^|\s)(nirpad (?!nirpad\b)[^#&|;]*)", line)
            if match:
                yield number, match.group(1).strip()
        else:
            for code in re.findall(r"`([^`\n]+)`", line):
                if code.startswith("nirpad "):
                    yield number, code


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _all_options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def _sim_options() -> set[str]:
    from hil.sim.__main__ import parse_args

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        parse_args(["--help"])
    return set(re.findall(r"(--[\w-]+)", out.getvalue())) - {"--help"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_nirpad_command_shown_uses_options_that_exist(doc: Path) -> None:
    from firmware_host.cli import build_parser

    top = build_parser(with_profile_commands=True)
    sim = _sim_options()
    wrong = []
    for number, command in _command_lines(doc.read_text(encoding="utf-8")):
        parser, path = top, ["nirpad"]
        for word in re.findall(r"[\w-]+", command)[1:]:
            sub = _subcommands(parser)
            if word not in sub:
                break
            parser, path = sub[word], [*path, word]
        known = sim if path == ["nirpad", "sim"] else _all_options(parser)
        for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", command):
            if option not in known:
                wrong.append(f"{doc.name}:{number}: {' '.join(path)} has no {option}")
    assert not wrong, "\n".join(wrong)
