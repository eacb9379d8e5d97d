"""releasekit: conventional commits to a tagged, built and published release, plus a private index."""

__version__ = "0.1.0"
