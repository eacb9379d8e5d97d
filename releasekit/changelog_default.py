"""The shipped template, `templates/changelog_section.md.j2`, written out in Python.  (pure)

A full render of a 100k-commit history lists some 50k entries; Jinja spends about 0.2 s of CPU on
them, more than everything else in rendering. When no `changelog_template` is configured this
function renders instead: same context, same bytes. tests/test_changelog_template.py renders
both on the same inputs and requires them to agree, so the .j2 file stays the documented truth.
"""

from __future__ import annotations

from typing import Any


def render_default(context: dict[str, Any]) -> str:
    """What the shipped template renders for `context` (before the final tidy)."""
    out = [context["heading"], "\n\n"]
    append = out.append
    for group in context["groups"]:
        out += ["### ", group.title, "\n\n"]
        for entry in group.entries:
            label = f"**{entry.label}:** " if entry.label else ""
            sha, url = entry.short_sha, entry.commit_url
            ref = f"[{sha}]({url})" if url else f"`{sha}`"
            if entry.reverts:
                if entry.reverts_url:
                    ref += f", reverts [{entry.reverts_short_sha}]({entry.reverts_url})"
                else:
                    ref += f", reverts `{entry.reverts_short_sha}`"
            append(f"- {label}{entry.description} ({ref})\n")
            if group.breaking:
                for note in entry.breaking_notes:
                    if note:
                        append(f"\n  {_indent(note)}\n")
        append("\n")
    hand_written = context["hand_written"]
    if hand_written:
        out += [hand_written, "\n\n"]
    if not context["groups"] and not hand_written:
        if context["unreleased"]:
            previous = context["previous_tag"]
            since = f"since `{previous}`" if previous else "yet"
            append(f"Nothing to release {since}.\n\n")
        else:
            append("No notable changes.\n\n")
    if context["compare_url"] and not context["link_reference"]:
        append(f"**Full changelog:** [{context['compare_label']}]({context['compare_url']})\n")
    return "".join(out)


def _indent(note: str) -> str:
    """Jinja's `indent(2)`: every line but the first, blank lines left empty."""
    first, *rest = (note + "\n").splitlines()
    return "\n".join([first, *(f"  {line}" if line else line for line in rest)])
