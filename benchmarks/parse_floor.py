"""The bare Python floor of a full changelog: every commit and tag read once, each header parsed.

No tool that renders a changelog from history in Python can do less: one `git log` of all of
HEAD, one tag listing, a regex over each header and a look for a breaking footer, then one heading
per release. The history benchmark runs it beside the real renderers.

    python benchmarks/parse_floor.py REPO
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

HEADER = re.compile(r"(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()\n]*)\))?(?P<bang>!)?: (?P<text>.+)")
TAG_FORMAT = "--format=%(refname:strip=2) %(objectname) %(*objectname)"


def main(repo: Path) -> int:
    """Print one heading per tag with the counts of its conventional changes."""
    refs = subprocess.run(
        ["git", "for-each-ref", TAG_FORMAT, "refs/tags"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tag_at: dict[str, str] = {}
    for line in refs.splitlines():
        name, sha, peeled = [*line.split(), ""][:3]
        tag_at[peeled or sha] = name
    log = subprocess.run(
        ["git", "log", "-z", "--format=%H%n%B", "HEAD"], cwd=repo, capture_output=True, check=True
    ).stdout
    sections: list[tuple[str, Counter[str]]] = [("Unreleased", Counter())]
    for record in log.split(b"\0"):
        if not record:
            continue
        sha, _, message = record.decode("utf-8", "surrogateescape").partition("\n")
        if sha in tag_at:
            sections.append((tag_at[sha], Counter()))
        match = HEADER.match(message)
        if match is None:
            continue
        breaking = match["bang"] is not None or "\nBREAKING CHANGE:" in message
        sections[-1][1]["breaking" if breaking else match["type"]] += 1
    out = [f"## {name}\n{dict(counts)}\n" for name, counts in sections]
    sys.stdout.write("".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path()))
