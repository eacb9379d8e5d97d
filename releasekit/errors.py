"""The one error tree of releasekit.

    ReleaseError                 anything releasekit refuses or fails to do (exit 1)
    ├── ConfigError              [tool.releasekit] or pyproject.toml is wrong
    ├── GitError                 the repository is not in a state we can release from
    ├── VersionError             a version cannot be parsed, or would move backwards
    ├── ChangelogError           CHANGELOG.md has no place to insert a release
    ├── BuildError               building the sdist or wheel failed
    ├── PublishError             uploading to or verifying against an index failed
    ├── IndexServerError         the bundled index server cannot start or act
    ├── BundleError              an air-gapped bundle cannot be planned, fetched, verified, imported
    └── MissingExtraError        a command needs an extra that is not installed

Every message says what is wrong; `hint` says what to do next. The CLI turns these into one
`error:` line (plus the hint) and exit code 1, in one place.
"""

from __future__ import annotations


class ReleaseError(Exception):
    """Base class: a refusal or failure with a message a person can act on."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(ReleaseError):
    """Configuration is missing, malformed or names an unknown key."""


class GitError(ReleaseError):
    """The git repository is dirty, detached, shallow, or a git command failed."""


class VersionError(ReleaseError):
    """A version cannot be parsed, or the requested bump is not allowed."""


class ChangelogError(ReleaseError):
    """The changelog file cannot be updated safely."""


class BuildError(ReleaseError):
    """Building distributions failed or produced the wrong files."""


class PublishError(ReleaseError):
    """Uploading to an index failed or the index disagrees with what was uploaded."""


class IndexServerError(ReleaseError):
    """The bundled index server cannot start or carry out an admin action."""


class BundleError(ReleaseError):
    """An air-gapped bundle cannot be planned, fetched, verified or imported."""


class MissingExtraError(ReleaseError):
    """A command needs an optional extra (`releasekit[server]`) that is not installed."""
