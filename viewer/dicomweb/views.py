"""Rendered resources and thumbnails (PS3.18 §8.3.5, §10.4) and the tile pyramid.

No text is drawn into an image unless ``annotation=patient,technique`` asks for it
(PS3.18 §8.3.5.1.1, ``viewer.dicomweb.annotation``; rendered resources only, not tiles
or thumbnails). In a de-identified share an object with (0028,0301) Burned In Annotation
YES is refused (403 ``burned_in_annotation``,
``viewer.services.deidentify.check_renderable``), and so is ``annotation=patient`` (403
``deidentified_share``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from viewer import access
from viewer.dicom import render
from viewer.dicom.geometry import slice_order
from viewer.dicom.io import open_stored
from viewer.dicomweb import annotation, params
from viewer.errors import NotFound, UnrenderableFrame, ViewerError
from viewer.models import Instance
from viewer.services import deidentify, rendering, storage

THUMBNAIL_SIZE = 128


def _frame_index(frame: int, instance: Instance) -> int:
    if not 1 <= frame <= max(instance.number_of_frames, 1):
        raise NotFound(
            f"frame {frame} does not exist (the instance has {instance.number_of_frames})",
            code="no_such_frame",
        )
    return frame - 1


def _annotated(
    instance: Instance, render_request: rendering.RenderRequest, kinds: tuple[str, ...]
) -> bytes:
    """The rendered image with the asked annotation drawn in (never cached: rare, and
    the text comes from the stored header)."""
    if instance.number_of_frames < 1:
        raise UnrenderableFrame("this object has no Pixel Data", code="no_pixel_data")
    image = rendering.display_image(instance, render_request)
    header = open_stored(storage.read(instance.storage_key))
    drawn = annotation.annotate(
        image, header, kinds, render_request.frame, instance.number_of_frames
    )
    return render.encode(drawn, render_request.media_type, render_request.quality)


def _respond(
    request: HttpRequest,
    instance: Instance,
    render_request: rendering.RenderRequest,
    kinds: tuple[str, ...] = (),
) -> HttpResponse:
    deidentify.check_renderable(request, instance)  # burned-in annotation, de-identified share
    if annotation.PATIENT in kinds and access.deidentified(request):
        raise deidentify.DeidentifiedShare(
            "this share link is de-identified: annotation=patient would burn the patient's "
            "identity into the image"
        )
    etag = f'"{render_request.key(instance)}{"-" + "-".join(kinds) if kinds else ""}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
    elif kinds:
        content = _annotated(instance, render_request, kinds)
        response = HttpResponse(content, content_type=render_request.media_type)
    else:
        rendered = rendering.render_instance(instance, render_request)
        response = HttpResponse(rendered.content, content_type=rendered.media_type)
    response["ETag"] = etag
    # Rendered bytes of a stored object never change: the browser may keep them, privately.
    response["Cache-Control"] = "private, max-age=86400"
    response["Vary"] = "Accept, Cookie"
    return response


def _request(
    request: HttpRequest,
    instance: Instance,
    frame: int,
    *,
    tile: tuple[int, int, int] | None = None,
) -> rendering.RenderRequest:
    query = request.GET
    if tile is None:
        params.check_parameters(query, params.RENDERED_PARAMETERS, "rendered")
    else:
        params.check_parameters(query, params.TILE_PARAMETERS, "tile")
    viewport = (
        render.parse_viewport(query["viewport"]) if query.get("viewport") and tile is None else None
    )
    return rendering.RenderRequest(
        frame=_frame_index(frame, instance),
        media_type=params.choose_media_type(query.get("accept"), request.headers.get("Accept")),
        quality=params.parse_quality(query),
        greyscale=params.parse_greyscale(query),
        viewport=viewport,
        tile=tile,
    )


@require_GET
@access.require_user
def rendered(
    request: HttpRequest, study: str, series: str, instance: str, frame: int = 1
) -> HttpResponse:
    found = access.instance_for(request, study, series, instance)
    kinds = annotation.parse_annotation(request.GET)
    return _respond(request, found, _request(request, found, frame), kinds)


@require_GET
@access.require_user
def tile(
    request: HttpRequest,
    study: str,
    series: str,
    instance: str,
    frame: int,
    level: int,
    column: int,
    row: int,
) -> HttpResponse:
    found = access.instance_for(request, study, series, instance)
    return _respond(request, found, _request(request, found, frame, tile=(level, column, row)))


def _thumbnail(request: HttpRequest, instance: Instance) -> HttpResponse:
    size = THUMBNAIL_SIZE
    query = request.GET
    params.check_parameters(query, params.THUMBNAIL_PARAMETERS, "thumbnail")
    render_request = rendering.RenderRequest(
        frame=max(instance.number_of_frames, 1) // 2 if instance.number_of_frames > 1 else 0,
        media_type=params.choose_media_type(query.get("accept"), request.headers.get("Accept")),
        quality=params.parse_quality(query) if query.get("quality") else 80,
        viewport=render.parse_viewport(query["viewport"])
        if query.get("viewport")
        else render.Viewport(size, size),
    )
    return _respond(request, instance, render_request)


def _middle_image(instances: list[Instance]) -> Instance:
    images = [i for i in instances if i.number_of_frames > 0]
    if not images:
        raise ViewerError("nothing here has pixel data to show", code="no_pixel_data", status=404)
    ordered = slice_order(images)
    return ordered[len(ordered) // 2]


@require_GET
@access.require_user
def instance_thumbnail(
    request: HttpRequest, study: str, series: str, instance: str
) -> HttpResponse:
    return _thumbnail(request, access.instance_for(request, study, series, instance))


@require_GET
@access.require_user
def series_thumbnail(request: HttpRequest, study: str, series: str) -> HttpResponse:
    found = access.series_for(request, study, series)
    return _thumbnail(request, _middle_image(list(found.instances.all())))


@require_GET
@access.require_user
def study_thumbnail(request: HttpRequest, study: str) -> HttpResponse:
    found = access.study_for(request, study)
    first = (
        found.series.filter(instances__number_of_frames__gt=0)
        .order_by("series_number", "id")
        .first()
    )
    if first is None:
        raise ViewerError(
            "nothing in this study has pixel data to show", code="no_pixel_data", status=404
        )
    return _thumbnail(request, _middle_image(list(first.instances.all())))
