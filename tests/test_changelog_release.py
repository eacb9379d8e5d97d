"""How one release lands in files of every shape (pure: text in, text out)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from releasekit.changelog import UNRELEASED_END, UNRELEASED_START
from releasekit.changelog_release import (
    NewRelease,
    heading_style,
    release_changelog,
    take_unreleased_notes,
)
from releasekit.changelog_template import DEFAULT_TEMPLATE, SectionInput, render_section
from releasekit.commits import Change
from releasekit.config import DEFAULT_TYPES
from releasekit.errors import ChangelogError

DAY = datetime.date(2026, 12, 1)
FEAT = Change("a" * 40, "feat", None, "add search", False, (), ())
URL = "https://github.com/o/r"


def made(text: str | None, version: str = "1.2.0", previous: str | None = "1.1.0") -> str:
    release = NewRelease(
        version, DAY, [FEAT], f"v{version}", f"v{previous}" if previous else None, previous
    )
    result = release_changelog(
        text, release, filename="CHANGELOG.md", repository_url=None, types=DEFAULT_TYPES,
        template=None,
    )  # fmt: skip
    return result.after


@pytest.mark.parametrize(
    ("heading", "style"),
    [
        ("## [1.1.0] - 2024-01-01", "## [{version}] - {date}"),
        ("## v1.1.0 (2024-01-01)", "## v{version} ({date})"),
        ("## 1.1.0 (2024-01-01)", "## {version} ({date})"),
        ("## 1.1.0 - 2024-01-01", "## {version} - {date}"),
        ("### v1.1.0 – 2024-01-01", "### v{version} – {date}"),
        ("## 1.1.0", "## {version}"),
        ("## [1.1.0]", "## [{version}]"),
        (
            "## [1.1.0](https://x.test/compare/v1.0.0...v1.1.0) (2024-01-01)",
            "## [{version}]({compare_url}) ({date})",
        ),
        ("## [1.1.0](https://pypi.org/project/x/1.1.0/) (2024-01-01)", None),
        ("## 1.1.0(https://x.test/compare/v1.0.0...v1.1.0)", None),
        ('## 1.1.0 - 2024-01-01 "Codename"', None),
    ],
)
def test_heading_style_follows_the_newest_release(heading: str, style: str | None) -> None:
    text = f"# Log\n\n## [Unreleased]\n\n{heading}\n\n- x\n\n## 0.9.0 (2020-01-01)\n"
    assert heading_style(text) == style


def test_heading_style_of_files_without_a_release() -> None:
    assert heading_style("# Log\n\n## [Unreleased]\n") == "## [{version}] - {date}"
    assert heading_style("# Log\n\n## Unreleased\n") is None
    assert heading_style(None) is None
    assert made("# Log\n\n## [Unreleased]\n\n- by hand\n").startswith(
        "# Log\n\n## [Unreleased]\n\n## [1.2.0] - 2026-12-01\n\n### Features\n\n"
        "- add search (`aaaaaaa`)\n\n- by hand\n"
    )


def test_no_file_gets_the_default_style() -> None:
    assert "\n## 1.2.0 - 2026-12-01\n" in made(None)


def test_unreleased_notes_stop_at_the_managed_block_and_keep_crlf() -> None:
    text = (
        "# Log\r\n\r\n## [Unreleased]\r\n\r\n- by hand  \r\n\r\n"
        f"{UNRELEASED_START}\r\n## Unreleased\r\n{UNRELEASED_END}\r\n\r\n## [1.1.0] - 2024-01-01\r\n"
    )
    rest, notes = take_unreleased_notes(text)
    assert notes == "- by hand  "
    assert rest.startswith(f"# Log\r\n\r\n## [Unreleased]\r\n\r\n{UNRELEASED_START}")
    after = made(text)
    assert UNRELEASED_START not in after and "\n" not in after.replace("\r\n", "")
    assert "- add search (`aaaaaaa`)\r\n\r\n- by hand  \r\n\r\n## [1.1.0]" in after


def test_links_follow_the_previous_version_without_an_unreleased_link() -> None:
    text = (
        "# Log\n\n## [1.1.0] - 2024-01-01\n\n- x\n\n"
        "[1.1.0]: https://gitlab.test/o/r/-/compare/v1.0.0...v1.1.0\n"
    )
    assert made(text).endswith(
        "[1.2.0]: https://gitlab.test/o/r/-/compare/v1.1.0...v1.2.0\n"
        "[1.1.0]: https://gitlab.test/o/r/-/compare/v1.0.0...v1.1.0\n"
    )
    # A link already there, or links the file does not keep in compare form: left alone.
    present = text + "[1.2.0]: https://elsewhere.test\n"
    assert made(present).endswith(present.split("- x\n\n", 1)[1])
    odd = "# Log\n\n## [1.1.0] - 2024-01-01\n\n[1.1.0]: https://x.test/tags/1.1.0\n"
    assert made(odd).endswith("\n[1.1.0]: https://x.test/tags/1.1.0\n")


def test_an_existing_section_is_kept_and_still_gets_its_link() -> None:
    text = (
        "# Log\n\n## [Unreleased]\n\n## [1.2.0] - 2026-11-30\n\nWritten ahead.\n\n"
        "## [1.1.0] - 2024-01-01\n\n[unreleased]: https://github.com/o/r/compare/v1.1.0...HEAD\n"
    )
    release = NewRelease("1.2.0", DAY, [FEAT], "v1.2.0", "v1.1.0", "1.1.0")
    result = release_changelog(
        text, release, filename="NEWS.md", repository_url=URL, types=DEFAULT_TYPES, template=None
    )
    assert result.note == "NEWS.md already has a section for 1.2.0: kept as written"
    assert result.notes == "Written ahead.\n"
    assert result.after == text.replace(
        "compare/v1.1.0...HEAD\n",
        "compare/v1.2.0...HEAD\n[1.2.0]: https://github.com/o/r/compare/v1.1.0...v1.2.0\n",
    )


def test_link_reference_headings_drop_the_full_changelog_line() -> None:
    section = SectionInput("1.2.0", DAY, [FEAT], "v1.2.0", "v1.1.0", link_reference=True)
    rendered = render_section(section, repository_url=URL, types=DEFAULT_TYPES)
    assert "Full changelog" not in rendered
    plain = SectionInput("1.2.0", DAY, [FEAT], "v1.2.0", "v1.1.0")
    assert "**Full changelog:** [v1.1.0...v1.2.0]" in render_section(
        plain, repository_url=URL, types=DEFAULT_TYPES
    )


def test_a_template_that_forgets_hand_written_notes_cannot_lose_them(tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ heading }}\n\n{% for e in entries %}- {{ e.text }}\n{% endfor %}")
    section = SectionInput("1.2.0", DAY, [FEAT], "v1.2.0", None, hand_written="- by hand\n")
    assert render_section(section, repository_url=None, types=DEFAULT_TYPES, template=template) == (
        "## 1.2.0 - 2026-12-01\n\n- add search\n\n- by hand\n"
    )


def test_the_default_template_is_shipped_in_the_package() -> None:
    assert DEFAULT_TEMPLATE.is_file()
    assert DEFAULT_TEMPLATE.parent.name == "templates"


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.j2"
    section = SectionInput("1.2.0", DAY, [FEAT], "v1.2.0", None)
    with pytest.raises(ChangelogError) as raised:
        render_section(section, repository_url=None, types=DEFAULT_TYPES, template=missing)
    assert f"cannot read the changelog template {missing}: No such file" in raised.value.message
    assert raised.value.hint is not None and "changelog_template" in raised.value.hint
