"""The plain-header fast path of `parse_metadata` answers exactly as the email parser does."""

from __future__ import annotations

import email.parser
import email.policy
import random

import pytest

from releasekit.server.metadata import ArchiveError, CoreMetadata, _plain_fields, parse_metadata


def email_oracle(raw: bytes) -> CoreMetadata:
    """parse_metadata as it was before the fast path: the email parser alone."""
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    name, version = message.get("Name"), message.get("Version")
    if not name or not version:
        raise ArchiveError("the core metadata has no Name or no Version field")
    requires_python = message.get("Requires-Python")
    return CoreMetadata(
        raw=raw,
        name=str(name).strip(),
        version=str(version).strip(),
        metadata_version=str(message.get("Metadata-Version", "1.0")).strip(),
        requires_python=str(requires_python).strip() if requires_python else None,
        dynamic=tuple(str(v).strip() for v in message.get_all("Dynamic") or ()),
    )


def outcome(parse: object, raw: bytes) -> CoreMetadata | str:
    try:
        return parse(raw)  # type: ignore[operator,no-any-return]
    except ArchiveError:
        return "refused"


KEYS = ["Name", "name", "NAME", "Version", "version", "Metadata-Version", "Requires-Python",
        "requires-python", "Dynamic", "Summary", "Author", "Classifier", "From", "", "X y",
        "Na me", "Name ", "Välue"]  # fmt: skip
VALUES = ["demo", " demo ", "1.0", "\t2.0 ", "", ">=3.8", "Requires-Dist", "Jürgen", "a:b",
          "x\x00y", " ", "1.0\t", "é"]  # fmt: skip
ODD_LINES = [" continued", "\tcontinued", "From someone", "not a header", "", "\r", "From: x"]
ENDINGS = ["\n", "\r\n", "\r"]


def random_metadata(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(0, 8)):
        if rng.random() < 0.15:
            lines.append(rng.choice(ODD_LINES))
        else:
            sep = rng.choice([": ", ":", ":  ", ":\t", " : "])
            lines.append(rng.choice(KEYS) + sep + rng.choice(VALUES))
    ending = rng.choice(ENDINGS) if rng.random() < 0.1 else "\n"
    text = ending.join(lines)
    text += rng.choice(["", ending, ending * 2, ending * 2 + "Body: line\n", "\n\nName: body\n"])
    encoding = rng.choice(["utf-8", "utf-8", "latin-1"])
    return text.encode(encoding, "replace")


def test_the_fast_path_equals_the_email_parser_on_20000_generated_headers() -> None:
    rng = random.Random(658)  # noqa: S311 - reproducible test data, not secrets
    took_fast = 0
    for _ in range(20_000):
        raw = random_metadata(rng)
        took_fast += _plain_fields(raw) is not None
        assert outcome(parse_metadata, raw) == outcome(email_oracle, raw), raw
    assert took_fast > 1_000  # both paths are exercised


@pytest.mark.parametrize(
    "raw",
    [
        b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Python: >=3.8\n\nbody\n",
        b"Metadata-Version: 2.4\nName: demo\nVersion: 1.0\nDynamic: Requires-Dist\n",
        b"Name: demo\nVersion: 1.0\nAuthor: J\xc3\xbcrgen\n\n",
        b"Metadata-Version:\nName: demo\nVersion: 1.0\n",
        b"Name: demo\nVersion: 1.0",
        b"\nName: demo\nVersion: 1.0\n",
        b"Name: d\xc3\xa9mo\nVersion: 1.0\n",
        b"Name: demo\nVersion: 1.0\n continued\n",
        b"Name: demo\r\nVersion: 1.0\r\n\r\n",
        b"From x\nName: demo\nVersion: 1.0\n",
        b"Name: demo\nbroken\nVersion: 1.0\n",
        b"Name: first\nName: second\nVersion: 1.0\n",
    ],
)
def test_real_shapes_parse_as_the_email_parser_does(raw: bytes) -> None:
    assert outcome(parse_metadata, raw) == outcome(email_oracle, raw)
