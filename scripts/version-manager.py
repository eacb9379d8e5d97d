#!/usr/bin/env python3
"""The seed guide's `version-manager.py`, kept as a thin wrapper over the releasekit CLI.

    python scripts/version-manager.py release auto [--push-tag] [--publish] [--dry-run]
    python scripts/version-manager.py bump patch|minor|major|prerelease [--prerelease-type alpha|beta|rc]
    python scripts/version-manager.py changelog 1.2.3
    python scripts/version-manager.py current | next

Every command maps one to one onto `releasekit ...`; run `releasekit --help` for the rest.
"""

from __future__ import annotations

import argparse
import sys

from releasekit.cli import main as releasekit


def translate(argv: list[str]) -> list[str]:
    """The seed's argument spelling -> releasekit's."""
    parser = argparse.ArgumentParser(prog="version-manager.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    release = sub.add_parser(
        "release", help="release (auto or a level), optionally push and publish"
    )
    release.add_argument("level", nargs="?", default="auto")
    release.add_argument("--push-tag", action="store_true")
    release.add_argument("--publish", action="store_true")
    release.add_argument("--repository")
    release.add_argument("--prerelease-type", choices=("alpha", "beta", "rc"))
    release.add_argument("--dry-run", action="store_true")
    bump = sub.add_parser("bump", help="write the next version into the version files")
    bump.add_argument("level", choices=("major", "minor", "patch", "prerelease", "release"))
    bump.add_argument("--prerelease-type", choices=("alpha", "beta", "rc"))
    bump.add_argument("--dry-run", action="store_true")
    changelog = sub.add_parser(
        "changelog", help="print one version's notes, or update CHANGELOG.md"
    )
    changelog.add_argument("version", nargs="?")
    sub.add_parser("current", help="print the current version")
    sub.add_parser("next", help="print the next version")
    args = parser.parse_args(argv)

    if args.command == "release":
        out = ["release", args.level]
        out += (
            ["--push-tag"] * args.push_tag
            + ["--publish"] * args.publish
            + ["--dry-run"] * args.dry_run
        )
        out += ["--repository", args.repository] if args.repository else []
        out += ["--prerelease-type", args.prerelease_type] if args.prerelease_type else []
        return out
    if args.command == "bump":
        out = ["bump", args.level] + ["--dry-run"] * args.dry_run
        return out + (["--prerelease-type", args.prerelease_type] if args.prerelease_type else [])
    if args.command == "changelog":
        return ["changelog", args.version] if args.version else ["changelog"]
    if args.command == "current":
        return ["version", "--current"]
    return ["version", "--print"]


if __name__ == "__main__":
    releasekit(translate(sys.argv[1:]))
