"""Media types: parse ``Content-Type``, pick the request format, negotiate ``Accept`` (RFC 9110 §12.5.1).

Request bodies: JSON, CSV and JSON Lines, with parameters (``charset=utf-8``) accepted and
aliases (``application/x-jsonlines`` ...) folded onto one canonical name. Responses: the same
three types, chosen by quality values, specificity and the client's order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from inference.errors import NotAcceptable, UnsupportedMediaType

JSON = "application/json"
CSV = "text/csv"
JSONLINES = "application/jsonlines"

INPUT_ALIASES: dict[str, str] = {
    JSON: JSON,
    CSV: CSV,
    JSONLINES: JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/json-lines": JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-ndjson": JSONLINES,
}
"""Accepted request media types (lower case) and the canonical format each one means."""

OUTPUT_TYPES: tuple[str, ...] = (JSON, CSV, JSONLINES)
"""Response media types in the server's order of preference (used only to break exact ties)."""

ACCEPTED_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
DEFAULT_INPUT_TYPE = JSON
"""What a request without ``Content-Type`` is read as (SageMaker's framework containers do the same)."""


@dataclass(frozen=True)
class MediaType:
    """A parsed media type: lower-cased ``type/subtype`` plus parameters (names lower-cased)."""

    type: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def essence(self) -> str:
        return f"{self.type}/{self.subtype}"


def parse_media_type(text: str) -> MediaType | None:
    """Parse one media type or range (``text/csv; charset=utf-8``); None if it is not one."""
    main, *raw_params = _split_outside_quotes(text, ";")
    main = main.strip().lower()
    type_, slash, subtype = main.partition("/")
    if not slash or not _is_token(type_) or not _is_token(subtype):
        return None
    params: dict[str, str] = {}
    for raw in raw_params:
        name, eq, value = raw.strip().partition("=")
        name = name.strip().lower()
        if not raw.strip():
            continue
        if not eq or not _is_token(name):
            return None
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[name] = value
    return MediaType(type_, subtype, params)


# Clients send the same few header values on every request: parse each once per worker. Errors
# are not cached (lru_cache only stores returns), so a bad header is still reported every time.
@functools.lru_cache(maxsize=256)
def request_format(content_type: str | None) -> str:
    """The canonical input format for a ``Content-Type`` header, or UnsupportedMediaType (415)."""
    if content_type is None or not content_type.strip():
        return DEFAULT_INPUT_TYPE
    media = parse_media_type(content_type)
    supported = ", ".join(sorted(INPUT_ALIASES))
    if media is None:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not a valid media type; supported: {supported}",
            [{"content_type": content_type, "supported": sorted(INPUT_ALIASES)}],
        )
    canonical = INPUT_ALIASES.get(media.essence)
    if canonical is None:
        raise UnsupportedMediaType(
            f"Content-Type {media.essence!r} is not supported; supported: {supported}",
            [{"content_type": media.essence, "supported": sorted(INPUT_ALIASES)}],
        )
    charset = media.params.get("charset")
    if charset is not None and charset.lower() not in ACCEPTED_CHARSETS:
        raise UnsupportedMediaType(
            f"charset {charset!r} is not supported; send UTF-8 (charset=utf-8)",
            [{"content_type": media.essence, "charset": charset, "supported_charsets": ["utf-8"]}],
        )
    return canonical


@dataclass(frozen=True)
class _Range:
    media: MediaType
    quality: float
    position: int

    @property
    def specificity(self) -> int:
        if self.media.type == "*":
            return 0
        if self.media.subtype == "*":
            return 1
        return 2 + len([p for p in self.media.params if p != "q"])

    def matches(self, type_: str, subtype: str) -> bool:
        if self.media.type == "*":
            return True
        if self.media.type != type_:
            return False
        return self.media.subtype in ("*", subtype)


@functools.lru_cache(maxsize=256)
def negotiate_accept(accept: str | None, default: str = JSON, offered: tuple[str, ...] = OUTPUT_TYPES) -> str:
    """The response type for an ``Accept`` header, or NotAcceptable (406).

    A missing or empty header, or one whose best match is only a wildcard range, yields ``default``.
    Among offered types the highest quality wins; a type's quality comes from the most specific
    range matching it; ties go to the range the client listed first, then to the server's order.
    """
    if accept is None or not accept.strip():
        return default
    ranges = _parse_accept(accept)
    best: tuple[float, int, int, int, str] | None = None
    for server_rank, offer in enumerate(offered):
        type_, _, subtype = offer.partition("/")
        matching = [r for r in ranges if r.matches(type_, subtype)]
        if not matching:
            continue
        top = max(matching, key=lambda r: r.specificity)
        if top.quality <= 0:
            continue
        # Wildcard-only matches rank behind explicit ones at equal quality and fall back to default.
        explicit = 1 if top.specificity >= 2 else 0
        candidate = (top.quality, explicit, -top.position, -server_rank, offer)
        if best is None or candidate[:4] > best[:4]:
            best = candidate
    if best is None:
        raise NotAcceptable(
            f"none of the types in Accept {accept!r} can be produced; supported: {', '.join(offered)}",
            [{"accept": accept, "supported": list(offered)}],
        )
    _, explicit, _, _, offer = best
    if not explicit and _default_allowed(ranges, default):
        return default
    return offer


def _default_allowed(ranges: list[_Range], default: str) -> bool:
    type_, _, subtype = default.partition("/")
    matching = [r for r in ranges if r.matches(type_, subtype)]
    return bool(matching) and max(matching, key=lambda r: r.specificity).quality > 0


def _parse_accept(accept: str) -> list[_Range]:
    ranges = []
    for position, item in enumerate(_split_outside_quotes(accept, ",")):
        if not item.strip():
            continue
        media = parse_media_type(item)
        if media is None or (media.type == "*" and media.subtype != "*"):
            continue  # unparseable entries are ignored; if nothing is left the result is 406
        quality = _quality(media.params.get("q", "1"))
        if quality is None:
            continue
        ranges.append(_Range(media, quality, position))
    return ranges


def _quality(text: str) -> float | None:
    try:
        q = float(text)
    except ValueError:
        return None
    return q if 0.0 <= q <= 1.0 else None


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(text: str) -> bool:
    return bool(text) and all(c in _TOKEN_CHARS for c in text)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts
