"""The I/O around `releasekit promote`: which stores or which server, credentials, progress."""

from __future__ import annotations

from pathlib import Path

import click

from releasekit.server.promote_store import PromoteStep, Promotion


def _told(step: PromoteStep) -> None:
    promoted = step.file
    click.echo(f"[{step.done}/{step.total}] {promoted.action} {promoted.filename}", err=True)


def _summary(promotion: Promotion) -> None:
    copied = sum(f.action == "copied" for f in promotion.files)
    click.echo(
        f"promoted {promotion.project} {promotion.version} from {promotion.source} to "
        f"{promotion.target}: {copied} copied, {len(promotion.files) - copied} already there",
        err=True,
    )


def on_stores(
    config_file: Path | None,
    packages_dir: Path | None,
    storage: str | None,
    project: str,
    version: str,
    source: str,
    target: str,
    include_yanked: bool,
) -> Promotion:
    """Promote by working on the index's stores directly (a running server picks it up)."""
    from releasekit.server.process import make_storage
    from releasekit.server.promote import promote_between
    from releasekit.server.settings import load_settings

    settings = load_settings({"packages_dir": packages_dir, "storage": storage}, config_file)
    click.echo(f"promoting {project} {version} from {source} to {target} ...", err=True)
    promotion = promote_between(
        make_storage(settings),
        lambda name: make_storage(settings, name),
        project,
        version,
        source,
        target,
        include_yanked=include_yanked,
        progress=_told,
    )
    _summary(promotion)
    return promotion


def over_http(
    url: str,
    token: str | None,
    project: str,
    version: str,
    source: str,
    target: str,
    include_yanked: bool,
) -> Promotion:
    """Ask the running index at `url` to promote; credentials as `releasekit publish` finds."""
    from releasekit.promote_client import promote_remote, promote_url

    auth = None
    if not token:
        from releasekit.config import Config
        from releasekit.credentials import resolve_target

        found = resolve_target(Config(root=Path.cwd()), promote_url(url).removesuffix("_/promote"))
        auth = (found.username or "", found.password) if found.password else None
    body: dict[str, object] = {"project": project, "version": version, "from": source}
    body |= {"to": target, "include_yanked": include_yanked}
    click.echo(f"promoting {project} {version} from {source} to {target} at {url} ...", err=True)
    promotion = promote_remote(url, body, token=token, auth=auth)
    for done, promoted in enumerate(promotion.files, 1):
        _told(PromoteStep(done, len(promotion.files), promoted))
    _summary(promotion)
    return promotion
