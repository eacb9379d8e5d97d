"""The ACL matrix as granted: one hand-written table the matrix test checks cell by cell, and
the Markdown rendering of it that docs/indexes.md carries (a test keeps the two equal).

The setup behind it: `-a update,download,list`; users root (admin), ci (upload), reader (read)
and releaser (upload); indexes root (no ACL: the server-wide rules), prod (ACL reader=read,
releaser=read,promote) and staging (inherits prod; ACL ci=read,upload, releaser=read); a token
of ci scoped to staging (list,download,update) and one of releaser scoped to prod
(list,download,promote).
"""

from __future__ import annotations

PRINCIPALS = (
    "anonymous",
    "reader",
    "ci",
    "releaser",
    "root",
    "token-staging",
    "token-prod",
)
PRINCIPAL_NOTES = {
    "anonymous": "no credentials",
    "reader": "user, role read; prod: read",
    "ci": "user, role upload; staging: read,upload",
    "releaser": "user, role upload; prod: read,promote; staging: read",
    "root": "user, role admin",
    "token-staging": "ci's token: list,download,update; --index staging",
    "token-prod": "releaser's token: list,download,promote; --index prod",
}
INDEXES = ("root", "prod", "staging")
ACTIONS = ("list", "download", "upload", "promote", "admin")
ACL = {
    "prod": {"reader": "read", "releaser": "read,promote"},
    "staging": {"ci": "read,upload", "releaser": "read"},
}

_ALL = frozenset(ACTIONS)
_READ = frozenset({"list", "download"})
_UPLOADER = frozenset({"list", "download", "upload", "promote"})  # the upload role

# (principal, index) -> the actions allowed; every other cell is refused (401 without
# credentials, 403 with them).
GRANTS: dict[tuple[str, str], frozenset[str]] = {
    ("anonymous", "root"): frozenset(),
    ("anonymous", "prod"): frozenset(),
    ("anonymous", "staging"): frozenset(),
    ("reader", "root"): _READ,
    ("reader", "prod"): _READ,
    ("reader", "staging"): frozenset(),
    ("ci", "root"): _UPLOADER,
    ("ci", "prod"): frozenset(),
    ("ci", "staging"): _READ | {"upload"},
    ("releaser", "root"): _UPLOADER,
    ("releaser", "prod"): _READ | {"promote"},
    ("releaser", "staging"): _READ,
    ("root", "root"): _ALL,
    ("root", "prod"): _ALL,
    ("root", "staging"): _ALL,
    ("token-staging", "root"): frozenset(),
    ("token-staging", "prod"): frozenset(),
    ("token-staging", "staging"): _READ | {"upload"},
    ("token-prod", "root"): frozenset(),
    ("token-prod", "prod"): _READ | {"promote"},
    ("token-prod", "staging"): frozenset(),
}


def expected(principal: str, index: str, action: str) -> str:
    """`ok`, `401` or `403`: what the server must answer."""
    if action in GRANTS[(principal, index)]:
        return "ok"
    return "401" if principal == "anonymous" else "403"


def render_matrix(cell: dict[tuple[str, str, str], str] | None = None) -> str:
    """The table as Markdown: a row per principal and index, a column per action.

    `cell` (the answers a test observed) replaces the expectations when given.
    """
    lines = ["| principal | index | " + " | ".join(ACTIONS) + " |", "|---|---|" + "---|" * 5]
    for principal in PRINCIPALS:
        for index in INDEXES:
            values = [
                (cell or {}).get((principal, index, a), expected(principal, index, a))
                for a in ACTIONS
            ]
            who = f"{principal} ({PRINCIPAL_NOTES[principal]})" if index == "root" else ""
            lines.append(f"| {who} | {index} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_matrix(), end="")
