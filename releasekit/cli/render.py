"""Text rendering of plans and diffs for the terminal (presentation only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from releasekit.release import ReleasePlan, describe_changes

if TYPE_CHECKING:
    from releasekit.project import FileEdit
    from releasekit.steps import StepPlan


def echo_diffs(edits: Sequence[FileEdit]) -> None:
    for edit in edits:
        click.echo(edit.diff().rstrip("\n"))


def format_plan(plan: ReleasePlan, *, verbose: bool, brief: bool = False) -> str:
    """The version decision and why, deciding commits; unless `brief`, the diffs and section."""
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
    return "\n".join(lines)


def format_steps(steps: StepPlan) -> str:
    """Every step of the release in the order it runs: to do, done (by an earlier run) or skip."""
    if steps.resumed:
        left = ", ".join(steps.pending) or "nothing"
        head = f"resuming the release of {steps.version} ({steps.tag}): {left} left to do"
    else:
        head = f"releasing {steps.version} ({steps.tag}):"
    lines = [head, "steps:"]
    lines.extend(f"  {step.state:<6} {step.name}: {step.detail}" for step in steps.steps)
    return "\n".join(lines)
