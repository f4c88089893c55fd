"""LOUPE_UPSTREAM_DICOMWEB: the upstream DICOMweb archives Loupe searches and fetches from.

A JSON array of objects, each::

    {"name": "pacs", "url": "http://127.0.0.1:8042/dicom-web",
     "auth": {"basic": ["user", "pass"]} | {"bearer": "token"} | null,
     "timeout": 10}

``name``: 1 to 32 letters, digits, ``-`` or ``_``, unique (it appears in URLs, the
worklist's ``data-remote`` and the ``source`` of fetched objects, never a secret);
``url``: the archive's DICOMweb base (http or https, no query, no fragment; a trailing
``/`` is dropped); ``auth``: optional, HTTP Basic or a bearer token; ``timeout``:
seconds for each call (connect and read; default 10, 1 to 300).

Parsed at start-up: a malformed value stops it with a message naming the problem
(never repeating a password or token). No Django imports here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 300.0


class UpstreamConfigError(ValueError):
    """LOUPE_UPSTREAM_DICOMWEB holds a value that cannot be used."""


@dataclass(frozen=True)
class Upstream:
    """One upstream archive. ``basic`` is (user, password); ``bearer`` a token."""

    name: str
    url: str
    basic: tuple[str, str] | None = field(default=None, repr=False)
    bearer: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer}"} if self.bearer else {}


def _auth(name: str, auth: object) -> tuple[tuple[str, str] | None, str | None]:
    if auth is None:
        return None, None
    if not isinstance(auth, dict) or len(auth) != 1:
        raise UpstreamConfigError(
            f'archive {name!r}: auth must be null, {{"basic": [user, password]}} '
            'or {"bearer": token}'
        )
    kind, value = next(iter(auth.items()))
    if kind == "basic":
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, str) for v in value)
            or not value[0]
        ):
            raise UpstreamConfigError(
                f"archive {name!r}: auth.basic must be [user, password], two strings"
            )
        return (value[0], value[1]), None
    if kind == "bearer":
        if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n"):
            raise UpstreamConfigError(f"archive {name!r}: auth.bearer must be a non-empty token")
        return None, value.strip()
    raise UpstreamConfigError(
        f"archive {name!r}: unknown auth {str(kind)[:32]!r} (use basic or bearer)"
    )


def _url(name: str, url: object) -> str:
    if not isinstance(url, str):
        raise UpstreamConfigError(f"archive {name!r}: url must be a string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamConfigError(
            f"archive {name!r}: url {url[:200]!r} is not an http(s) URL with a host"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UpstreamConfigError(
            f"archive {name!r}: url must have no query, fragment or credentials "
            "(put credentials in auth)"
        )
    return url.strip().rstrip("/")


def _timeout(name: str, value: object) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UpstreamConfigError(f"archive {name!r}: timeout must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT:
        raise UpstreamConfigError(
            f"archive {name!r}: timeout {value} is outside 0 to {MAX_TIMEOUT:g} seconds"
        )
    return float(value)


def parse_upstreams(raw: str | None) -> tuple[Upstream, ...]:
    """The archives of a LOUPE_UPSTREAM_DICOMWEB value; () when unset or empty."""
    if raw is None or not raw.strip():
        return ()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UpstreamConfigError(f"not JSON: {exc.msg} at character {exc.pos}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise UpstreamConfigError("must be a JSON array of archives")
    archives: list[Upstream] = []
    for position, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise UpstreamConfigError(f"archive {position} is not a JSON object")
        unknown = sorted(set(item) - {"name", "url", "auth", "timeout"})
        if unknown:
            raise UpstreamConfigError(
                f"archive {position}: unknown key(s) {', '.join(k[:32] for k in unknown)}"
            )
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise UpstreamConfigError(
                f"archive {position}: name must be 1 to 32 letters, digits, - or _"
            )
        if any(a.name == name for a in archives):
            raise UpstreamConfigError(f"archive name {name!r} is given twice")
        if "url" not in item:
            raise UpstreamConfigError(f"archive {name!r}: url is required")
        basic, bearer = _auth(name, item.get("auth"))
        archives.append(
            Upstream(
                name=name,
                url=_url(name, item["url"]),
                basic=basic,
                bearer=bearer,
                timeout=_timeout(name, item.get("timeout")),
            )
        )
    return tuple(archives)
