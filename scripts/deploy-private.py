#!/usr/bin/env python3
"""The seed guide's `deploy-private.py`, kept as a thin wrapper over `releasekit publish`.

    python scripts/deploy-private.py                  build and publish the declared version
    python scripts/deploy-private.py --bump patch     release a patch first (commit, tag), then publish
    python scripts/deploy-private.py --force          upload even if the index has this version
    python scripts/deploy-private.py --skip-build     upload the files already in dist/
    python scripts/deploy-private.py --dry-run        show what would run (with --bump: the plan)

Credentials: RELEASEKIT_USERNAME/RELEASEKIT_PASSWORD (or TWINE_*), ~/.pypirc or keyring.
"""

from __future__ import annotations

import argparse
import shlex
import sys

try:
    from releasekit.cli import main as releasekit
except ImportError:  # run with a Python that lacks releasekit: say which one and what to do
    sys.exit(
        f"error: releasekit is not installed for {sys.executable}\n"
        "  hint: pip install releasekit, or run this script with the project's .venv/bin/python"
    )


def parse(argv: list[str]) -> argparse.Namespace:
    """The seed's options; `--bump` and `--skip-build` together are a usage error."""
    parser = argparse.ArgumentParser(
        prog="deploy-private.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--bump", choices=("patch", "minor", "major"))
    parser.add_argument("--force", action="store_true", help="upload over an existing version")
    parser.add_argument("--skip-build", action="store_true", help="upload dist/ as it is")
    parser.add_argument("--repository", help="index NAME or URL (default: the project's)")
    parser.add_argument("--dry-run", action="store_true", help="show what would run")
    parser.add_argument("--no-isolation", action="store_true", help="build in this environment")
    parser.add_argument("--outdir", help="where the sdist and wheel go (default dist)")
    parser.add_argument("-C", "--project-dir", help="the project directory (default .)")
    args = parser.parse_args(argv)
    if args.bump and args.skip_build:
        parser.error(
            "--skip-build cannot be combined with --bump: the new version is not built yet"
        )
    return args


def translate(args: argparse.Namespace) -> list[str]:
    """The `releasekit` arguments that carry out `args`."""
    out = ["-C", args.project_dir] if args.project_dir else []
    if args.bump and args.dry_run:
        # A bump changes files, commits and tags: the release plan shows all of it.
        out += ["release", args.bump, "--publish", "--dry-run"]
    else:
        out += ["publish"] + (["--bump", args.bump] if args.bump else [])
        out += ["--skip-build"] * args.skip_build
    out += ["--force"] * args.force + ["--no-isolation"] * args.no_isolation
    out += ["--repository", args.repository] if args.repository else []
    return out + (["--outdir", args.outdir] if args.outdir else [])


def main(argv: list[str]) -> None:
    """Run `releasekit publish` (or, for a dry run, say what it would do)."""
    args = parse(argv)
    command = translate(args)
    if args.dry_run and not args.bump:
        print(f"would run: releasekit {shlex.join(command)}")
        return
    releasekit(command)


if __name__ == "__main__":
    main(sys.argv[1:])
