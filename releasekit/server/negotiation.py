"""PEP 691 content negotiation for the simple pages: Accept with q-values, `latest`, `?format=`."""

from __future__ import annotations

from typing import Literal

Format = Literal["json", "html", "text-html"]

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
CONTENT_TYPES: dict[Format, str] = {
    "json": JSON_V1,
    "html": HTML_V1,
    "text-html": f"{TEXT_HTML}; charset=utf-8",
}
_ALIASES: dict[str, Format] = {
    JSON_V1: "json",
    "application/vnd.pypi.simple.latest+json": "json",
    HTML_V1: "html",
    "application/vnd.pypi.simple.latest+html": "html",
    TEXT_HTML: "text-html",
}
# On equal q a type the client named wins over one it only matched by a wildcard. Among named
# types JSON is preferred, text/html is the last resort (PEP 691's recommendation). A bare
# `*/*` (curl, requests' default, older poetry) gets text/html, as PyPI answers it, so a client
# that never asked for JSON is never handed JSON.
_PREFERENCE: tuple[Format, ...] = ("json", "html", "text-html")
_WILDCARD_PREFERENCE: tuple[Format, ...] = ("text-html", "json", "html")


def _parse_accept(header: str) -> list[tuple[str, float]]:
    ranges = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        if not media:
            continue
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        ranges.append((media, q))
    return ranges


def _quality(fmt: Format, ranges: list[tuple[str, float]]) -> tuple[float, bool]:
    """The q of the most specific range matching `fmt` (RFC 9110 §12.5.1), and whether the
    client named this type rather than matching it by a wildcard."""
    concrete = CONTENT_TYPES[fmt].split(";")[0]
    best: tuple[int, float] | None = None
    for media, q in ranges:
        if media in _ALIASES and _ALIASES[media] == fmt:
            specificity = 3
        elif media == "*/*":
            specificity = 1
        elif media.endswith("/*") and concrete.startswith(media[:-1]):
            specificity = 2
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, q)
    return (0.0, False) if best is None else (best[1], best[0] == 3)


def negotiate(accept: str | None, format_param: str | None = None) -> Format | None:
    """Choose the representation, or None when nothing acceptable exists (answer 406).

    `?format=<content-type>` wins over Accept; no Accept header at all means text/html
    (a browser or a very old client).
    """
    if format_param is not None:
        return _ALIASES.get(format_param.strip().lower())
    if accept is None or not accept.strip():
        return "text-html"
    ranges = _parse_accept(accept)
    scored = []
    for fmt in _PREFERENCE:
        q, named = _quality(fmt, ranges)
        order = _PREFERENCE if named else _WILDCARD_PREFERENCE
        scored.append((q, named, -order.index(fmt), fmt))
    q, _, _, fmt = max(scored)
    return fmt if q > 0 else None
