"""The shipped template and its Python twin agree byte for byte; every variable is documented."""

from __future__ import annotations

import datetime
import random
from pathlib import Path

import pytest

from releasekit.changelog_default import render_default
from releasekit.changelog_template import (
    DEFAULT_TEMPLATE,
    Entry,
    Group,
    SectionInput,
    render_template,
    section_context,
)
from releasekit.commits import Change
from releasekit.config import DEFAULT_TYPES
from releasekit.versioning import Level

DOCS = Path(__file__).parent.parent / "docs" / "changelog-template.md"
TYPES = {**DEFAULT_TYPES, "build": Level.PATCH, "wip": Level.PATCH}
URL = "https://git.example.com/team/lib.git"


def random_changes(rng: random.Random, count: int) -> list[Change]:
    kinds = ["feat", "fix", "perf", "revert", "docs", "build", "wip", "chore"]
    words = ["add", "*bold*", "`code`", "_x_", "<b>", "# h", "1. n", "- l", "a\nb", "[l](u)"]
    notes = ["", "one", "two\n\nparas", "trailing  \n\n\nblanks", "<!-- c", "  indented\n  more"]
    changes = []
    for index in range(count):
        sha = f"{index:040x}"
        breaking = rng.random() < 0.2
        changes.append(
            Change(
                sha,
                rng.choice(kinds),
                rng.choice([None, "api", "cli(x)", "a_b"]),
                " ".join(rng.choices(words, k=rng.randint(1, 4))),
                breaking,
                tuple(rng.choices(notes, k=rng.randint(0, 2))) if breaking else (),
                (),
                rng.choice([None, f"{index + 1:040x}"]),
            )
        )
    return changes


def inputs() -> list[SectionInput]:
    rng = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    day = datetime.date(2026, 12, 1)
    out = [
        SectionInput(None, None, [], None, None),
        SectionInput(None, None, [], None, "v1.0.0"),
        SectionInput("1.0.0", day, [], "v1.0.0", None),
        SectionInput("1.0.0", day, [], "v1.0.0", None, hand_written="- by hand\n\n### Added\n"),
    ]
    for index in range(40):
        out.append(
            SectionInput(
                rng.choice([None, "1.2.0", "2.0.0rc1"]),
                day,
                random_changes(rng, rng.randint(0, 12)),
                rng.choice([None, "v1.2.0"]),
                rng.choice([None, "v1.1.0"]),
                rng.choice([None, "1.1.0"]),
                heading_style=rng.choice(["## {version} - {date}", "## [{version}] - {date}"]),
                hand_written=rng.choice(["", "- kept  \n\n\n- as is"]),
                link_reference=index % 3 == 0,
            )
        )
    return out


@pytest.mark.parametrize("section", inputs())
@pytest.mark.parametrize("repository_url", [None, URL])
def test_the_python_twin_renders_the_shipped_template(
    section: SectionInput, repository_url: str | None
) -> None:
    context = section_context(section, repository_url=repository_url, types=TYPES)
    assert render_default(context) == render_template(DEFAULT_TEMPLATE, context)


def test_every_variable_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = SectionInput("1.0.0", datetime.date(2026, 12, 1), [], "v1.0.0", None)
    for name in section_context(section, repository_url=None, types=TYPES):
        assert f"`{name}`" in text, name
    for field in (*Entry._fields, *Group._fields):
        assert f"`{field}`" in text, field
    assert DEFAULT_TEMPLATE.read_text(encoding="utf-8") in text  # shown in full, as shipped
