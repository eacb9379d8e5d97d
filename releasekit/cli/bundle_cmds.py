"""`releasekit bundle plan|fetch|sign|verify|import|keygen`: air-gapped package bundles."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from releasekit.bundle import fetch as fetch_mod
from releasekit.bundle import importer, plan, sign, verify
from releasekit.bundle.targets import Target, parse_target
from releasekit.errors import BundleError

DIR = click.Path(file_okay=False, path_type=Path)
FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def _targets(values: tuple[str, ...]) -> list[Target]:
    return [parse_target(v) for v in values]


def _requirements(args: tuple[str, ...], files: tuple[Path, ...]) -> list[str]:
    found = list(args)
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        found += [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]
    return found


@click.group("bundle")
def bundle_group() -> None:
    """Carry an exact package closure into an air-gapped network."""


@bundle_group.command("plan")
@click.argument("requirements", nargs=-1)
@click.option("-r", "--requirement", "files", multiple=True, type=FILE, help="A requirements file.")
@click.option(
    "--target", "targets", multiple=True, required=True, help="PLATFORM/PYTHON, repeatable."
)
@click.option(
    "--index", envvar="RELEASEKIT_UPSTREAM", required=True, help="Upstream simple index URL."
)
@click.option("--since", type=DIR, help="A previous bundle: carry only what is new (delta).")
@click.option("-o", "--output", type=DIR, required=True, help="Plan directory to write.")
def plan_cmd(requirements: tuple[str, ...], files: tuple[Path, ...], targets: tuple[str, ...],
             index: str, since: Path | None, output: Path) -> None:  # fmt: skip
    """Resolve REQUIREMENTS for every --target and write one pylock.toml per target."""

    def told(target: Target) -> None:
        click.echo(f"resolving for {target} ...", err=True)

    result = plan.plan_bundle(
        _requirements(requirements, files), _targets(targets), index, since=since, progress=told
    )
    plan.write_plan(result, output)
    for target, packages in result.locks:
        click.echo(f"{target}: {len(packages)} packages")
    for target, package in result.sdists():
        click.echo(
            f"note: {target}: {package.name} {package.version} has no wheel for this target; carrying its sdist {package.file.filename} (built on install)"
        )
    click.echo(
        f"{len(result.carried())} files to fetch, {len(result.tombstones)} tombstones -> {output}"
    )


@bundle_group.command("fetch")
@click.argument("plan_dir", type=DIR)
@click.option("-o", "--output", type=DIR, required=True, help="Bundle directory (resumable).")
@click.option("-j", "--jobs", default=4, show_default=True, help="Parallel downloads.")
@click.option("--sign", "key", type=FILE, help="Sign the bundle with this Ed25519 private key.")
@click.option("--index", help="Upstream URL with credentials (user:token@host) if it needs them.")
def fetch_cmd(plan_dir: Path, output: Path, jobs: int, key: Path | None, index: str | None) -> None:
    """Download the plan's files once each, check every hash, and write the bundle."""
    the_plan = plan.read_plan(plan_dir)
    auth = _userinfo(index)
    with click.progressbar(
        length=len(the_plan.carried()), label="fetching", file=sys.stderr
    ) as bar:
        manifest = fetch_mod.fetch_bundle(
            the_plan, output, jobs=jobs, auth=auth, progress=lambda p: bar.update(1)
        )
    if key is not None:
        sign.sign_bundle(output, key)
    click.echo(
        f"bundle {manifest.bundle_id}: {len(manifest.files)} files, {len(manifest.locks)} locks -> {output}"
    )


def _userinfo(url: str | None) -> tuple[str, str] | None:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url or "")
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


@bundle_group.command("keygen")
@click.argument("private_key", type=click.Path(dir_okay=False, path_type=Path))
def keygen_cmd(private_key: Path) -> None:
    """Create an Ed25519 key pair: PRIVATE_KEY (0600) and PRIVATE_KEY.pub."""
    click.echo(f"public key: {sign.generate_key(private_key)}")


@bundle_group.command("sign")
@click.argument("bundle", type=DIR)
@click.option("--key", type=FILE, required=True, help="Ed25519 private key (PEM).")
def sign_cmd(bundle: Path, key: Path) -> None:
    """Sign BUNDLE's SHA256SUMS."""
    click.echo(f"signed: {sign.sign_bundle(bundle, key)}")


@bundle_group.command("verify")
@click.argument("bundle", type=DIR)
@click.option("--key", type=FILE, help="Ed25519 public key: the signature must be by it.")
def verify_cmd(bundle: Path, key: Path | None) -> None:
    """Check signature, SHA256SUMS, every file's hash and each lock's closure."""
    with click.progressbar(length=1, label="hashing", file=sys.stderr) as bar:

        def told(done: int, total: int) -> None:
            bar.length = total
            bar.update(1)

        report = verify.verify_bundle(bundle, key, progress=told)
    signed = (
        f"signed by {report.signed_by}" if report.signed_by else "signature not checked (no --key)"
    )
    click.echo(
        f"ok: bundle {report.manifest.bundle_id}: {report.hashed} files hashed, {report.packages_checked} dependency lists checked, {signed}"
    )
    for entry in report.unchecked:
        click.echo(f"note: closure not checked (no metadata in the bundle): {entry}")


@bundle_group.command("import")
@click.argument("bundle", type=DIR)
@click.option("--packages-dir", type=DIR, help="Write into this packages directory directly.")
@click.option("--index", help="Upload to this running index (its root URL).")
@click.option("--user", envvar="RELEASEKIT_INDEX_USER", help="Uploader name (--index).")
@click.option("--password", envvar="RELEASEKIT_INDEX_PASSWORD", help="Its password or token.")
@click.option("--key", type=FILE, help="Ed25519 public key the bundle must be signed by.")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
def import_cmd(bundle: Path, packages_dir: Path | None, index: str | None, user: str | None,
               password: str | None, key: Path | None, dry_run: bool) -> None:  # fmt: skip
    """Verify BUNDLE, then import it (idempotent): --packages-dir DIR or --index URL."""
    if (packages_dir is None) == (index is None):
        raise BundleError("pass exactly one of --packages-dir and --index", hint="see --help")
    told = lambda name: click.echo(f"imported {name}", err=True)  # noqa: E731
    if packages_dir is not None:
        result = importer.import_to_directory(
            bundle, packages_dir, key=key, dry_run=dry_run, progress=told
        )
    else:
        auth = (user, password or "") if user else None
        result = importer.import_over_api(
            bundle, str(index), auth=auth, key=key, dry_run=dry_run, progress=told
        )
    if key is None:
        click.echo("note: no --key: the bundle's signature was not checked", err=True)
    verb = "would" if dry_run else "did"
    for name in result.add:
        click.echo(f"{verb} add {name}")
    for name, reason in result.yank:
        click.echo(
            f"{verb} yank {name}"
            + (f" ({reason})" if reason else "")
            + ("" if packages_dir else " [needs `releasekit server yank` on the index host]")
        )
    click.echo(
        f"bundle {result.bundle_id}: {len(result.add)} added, {len(result.present)} already present, {len(result.yank)} yanks"
        + (" (dry run)" if dry_run else "")
    )
