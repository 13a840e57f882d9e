"""Uploaded files reach browsers only through here: generated images and their thumbnails, to people who
may label (or staff), never the rest of MEDIA_ROOT (uploaded import files and zips).

On the file system Django checks the request and nginx sends the bytes: the answer is an empty response
with `X-Accel-Redirect` into nginx's `internal` location (MEDIA_ACCEL_REDIRECT, see deploy/nginx/).
Without nginx (the demo, runserver) the file is streamed by Django. With an S3 bucket the browser gets a
short-lived signed URL from the storage instead, and never comes here.
"""

import mimetypes
import posixpath
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files.storage import FileSystemStorage, default_storage
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_safe

from annotation.auth_backend import LABEL_PERMISSION

# Folders that hold images annotators are shown (annotation.models.images' upload paths).
SERVED_FOLDERS = ("images/", "thumbnails/")


def media_url(file: FieldFile) -> str:
    """The one place a stored file's URL is made: this site's media route on the file system (authorised
    by `media_serve`), a signed URL that expires after MEDIA_URL_EXPIRE_SECONDS elsewhere (S3)."""
    if not file:
        return ""
    if isinstance(file.storage, FileSystemStorage):
        return file.storage.url(file.name)
    return file.storage.url(file.name, expire=settings.MEDIA_URL_EXPIRE_SECONDS)


def may_see_media(user) -> bool:
    return user.is_authenticated and (user.is_staff or user.has_perm(LABEL_PERMISSION))


def _served_name(path: str) -> str:
    """The storage name for a request path; 404 for anything outside the served folders or not canonical."""
    if "\\" in path or "\x00" in path or posixpath.normpath(path) != path:
        raise Http404("No such file.")
    if not path.startswith(SERVED_FOLDERS):
        raise Http404("No such file.")
    return path


@require_safe
def media_serve(request: HttpRequest, path: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not may_see_media(request.user):
        return HttpResponseForbidden("Images are shown to annotators and staff only.")
    name = _served_name(path)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if settings.MEDIA_ACCEL_REDIRECT:
        # nginx sends the file (and answers 404 if it is missing); it keeps these headers of ours.
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_ACCEL_REDIRECT + quote(name)
    else:
        if not default_storage.exists(name):
            raise Http404("No such file.")
        response = FileResponse(default_storage.open(name), content_type=content_type)
    # Content-addressed files never change; only this browser may keep them.
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return response
