"""``multipart/related`` bodies (RFC 2387) and the Accept header of WADO-RS (PS3.18 §8.7).

A body is written part by part as the response streams, so that a study is never held
in memory whole; each part carries its own Content-Type (PS3.18 §8.7.3.5, with the
``transfer-syntax`` parameter where it names one).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from viewer.errors import ViewerError


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``multipart/related; type="X"; transfer-syntax=Y``
    gives media ``multipart/related``, ``type`` X and ``transfer_syntax`` Y."""

    media: str
    type: str = ""
    transfer_syntax: str = ""
    quality: float = 1.0
    position: int = 0
    params: dict[str, str] = field(default_factory=dict)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_accept(text: str) -> list[MediaRange]:
    """The media ranges of an Accept value, best first (highest q, then as given); a
    range with q=0 is left out. A q that is not a number counts as 0 (not acceptable)."""
    ranges: list[MediaRange] = []
    for position, part in enumerate(_split_outside_quotes(text[:4000], ",")):
        fields = [f.strip() for f in _split_outside_quotes(part, ";")]
        media = fields[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for extra in fields[1:]:
            name, _, value = extra.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality <= 0:
            continue
        ranges.append(
            MediaRange(
                media=media,
                type=params.get("type", "").lower(),
                transfer_syntax=params.get("transfer-syntax", ""),
                quality=quality,
                position=position,
                params=params,
            )
        )
    return sorted(ranges, key=lambda r: (-r.quality, r.position))


def not_acceptable(message: str) -> ViewerError:
    return ViewerError(message, code="not_acceptable", status=406)


@dataclass(frozen=True)
class Part:
    """One part: its Content-Type and its content, as chunks made when it is sent."""

    content_type: str
    chunks: Iterable[bytes]
    location: str = ""


class Multipart:
    """A ``multipart/related; type="<type>"`` body with a boundary of its own."""

    def __init__(self, part_type: str) -> None:
        self.part_type = part_type
        self.boundary = uuid.uuid4().hex

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="{self.part_type}"; boundary={self.boundary}'

    def stream(self, parts: Iterable[Part]) -> Iterator[bytes]:
        marker = f"--{self.boundary}".encode()
        for part in parts:
            head = [marker, f"Content-Type: {part.content_type}".encode()]
            if part.location:
                head.append(f"Content-Location: {part.location}".encode())
            yield b"\r\n".join(head) + b"\r\n\r\n"
            yield from part.chunks
            yield b"\r\n"
        yield marker + b"--\r\n"


def split(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a ``multipart/related`` body, as (headers, content): for tests and
    for clients of this module; raises ValueError when it is not one."""
    boundary = ""
    for item in _split_outside_quotes(content_type, ";")[1:]:
        name, _, value = item.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise ValueError("no boundary in the Content-Type")
    marker = f"--{boundary}".encode()
    pieces = body.split(b"\r\n" + marker)
    first = pieces[0]
    if not first.startswith(marker):
        raise ValueError("the body does not start with its boundary")
    pieces[0] = first[len(marker) :]
    parts: list[tuple[dict[str, str], bytes]] = []
    for piece in pieces:
        if piece.startswith(b"--"):
            break
        head, _, content = piece[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts
