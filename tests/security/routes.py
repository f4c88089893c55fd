"""Every URL pattern of the URL conf, filled with real values: what the security sweep walks.

The walk is ``tests.viewer.api.test_share_routes.walk`` (the share-link test's), extended
here to the routes that one leaves out: regular-expression patterns (the admin's app
index and catch-all, FHIR's unknown paths), the admin's object pages (whose ``object_id``
names a row of that admin's model) and the sign-in and launch routes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.urls import URLPattern, get_resolver, resolve

from tests.viewer.api.test_share_routes import walk

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_ADMIN_OBJECT = re.compile(r"^admin/(\w+)/(\w+)/<path:object_id>/")


@dataclass(frozen=True)
class Route:
    template: str  # the walked pattern, e.g. "api/studies/<str:study>"
    pattern: URLPattern

    @property
    def parameters(self) -> set[str]:
        return set(_GROUP.findall(self.template)) | set(_CONVERTER.findall(self.template))

    def admin_model(self) -> Any:
        """The model of an admin object page (``admin/<app>/<model>/<id>/...``), else None."""
        found = _ADMIN_OBJECT.match(self.template)
        return apps.get_model(found[1], found[2]) if found else None

    def url(self, values: dict[str, str]) -> str:
        """The path with every parameter filled from ``values`` (``object_id`` from
        ``values["object_id:<app_label>.<model>"]`` when there is one)."""
        model = self.admin_model()
        if model is not None:
            key = f"object_id:{model._meta.label_lower}"
            values = {**values, "object_id": values.get(key, values["object_id"])}
        text = self.template.replace("^", "").replace("$", "")
        text = _GROUP.sub(lambda m: values[m[1]], text)
        return "/" + _CONVERTER.sub(lambda m: values[m[1]], text)


def every_route() -> list[Route]:
    """Every URL pattern, once per distinct path (STOW-RS shares its two paths with QIDO-RS
    and WADO-RS, and its view passes their methods on: one path, one set of requests)."""
    seen: set[str] = set()
    found = []
    for template, pattern in walk(get_resolver().url_patterns):
        if template in seen:
            continue
        seen.add(template)
        found.append(Route(template, pattern))
    return found


def resolves_to(route: Route, url: str) -> bool:
    """``url`` is answered by ``route``'s pattern (not by an earlier one that matches it too)."""
    found = resolve(url.split("?", 1)[0]).route  # regex parts joined without their "^"
    return bool(found == route.template.replace("^", ""))
