"""Text rendering of plans and diffs for the terminal (presentation only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from releasekit.release import ReleasePlan, describe_changes

if TYPE_CHECKING:
    from releasekit.pipeline import PublishOptions, ReleaseOutcome
    from releasekit.project import FileEdit


def echo_diffs(edits: Sequence[FileEdit]) -> None:
    for edit in edits:
        click.echo(edit.diff().rstrip("\n"))


def format_plan(
    plan: ReleasePlan, *, verbose: bool, brief: bool = False, publish: PublishOptions | None = None
) -> str:
    """The whole plan: versions and why, deciding commits, diffs, section, tag, push."""
    current = str(plan.current) if plan.current else "(no release yet)"
    lines = [
        f"branch {plan.branch} (channel {plan.channel})",
        f"version: {current} -> {plan.next}",
        f"reason: {plan.reason}",
    ]
    deciding = describe_changes(plan.changes)
    if deciding:
        lines.append("commits that decided it:")
        lines.extend(f"  {line}" for line in deciding)
    if verbose and plan.ignored:
        lines.append("ignored (not conventional commits):")
        lines.extend(f"  {c.short_sha} {c.subject}" for c in plan.ignored)
    if brief:
        return "\n".join(lines)
    lines.append("files:")
    lines.extend(edit.diff().rstrip("\n") for edit in plan.edits)
    if plan.changelog_note:
        lines.append(f"changelog: {plan.changelog_note}")
    lines.append("changelog section:")
    lines.extend(f"  {line}" if line else "" for line in plan.section.rstrip("\n").splitlines())
    lines.append(f"commit: {plan.commit_message}")
    lines.append(f"tag: {plan.tag} (annotated)")
    if publish is not None:
        where = publish.repository or "the default repository"
        lines.append(
            f"build: sdist and wheel of {plan.next} into {publish.outdir}/ (before the tag)"
        )
        lines.append(f"publish: upload to {where}, then verify each file's sha256 on the index")
    if plan.push_to:
        lines.append(f"push: {plan.branch} and {plan.tag} to {plan.push_to}")
    else:
        lines.append("push: nothing (pass --push-tag to push)")
    return "\n".join(lines)


def format_resume(outcome: ReleaseOutcome) -> str:
    assert outcome.resumed is not None
    head = f"release {outcome.resumed.version} ({outcome.resumed.tag})"
    if not outcome.steps:
        return f"{head}: nothing left to do"
    return "\n".join([f"finishing {head}:", *(f"  {step}" for step in outcome.steps)])
