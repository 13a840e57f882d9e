"""What a client may send, checked once at the door: integers within their columns, no NUL characters,
JSON of bounded depth. A request outside these gets a 400 that names the problem and changes nothing
(PostgreSQL refuses NUL in text and integers past its columns, which would otherwise surface as a 500)."""

from urllib.parse import unquote_to_bytes

from django import forms
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError

ID_MAX = 2**63 - 1  # bigint: every primary key
INT_MAX = 2**31 - 1  # integer columns (counts, durations, steps)
JSON_MAX_DEPTH = 32
NUL_MESSAGE = "NUL characters (\\x00) are not accepted in text"


def form_id(**options) -> forms.IntegerField:
    return forms.IntegerField(min_value=1, max_value=ID_MAX, **options)


def api_id(**options) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=ID_MAX, **options)


def is_id(value) -> bool:
    """A JSON id as the lean parsers take it: an int (not a bool) that fits a primary key."""
    return type(value) is int and 1 <= value <= ID_MAX


def json_problem(value) -> str | None:
    """Why a parsed JSON value is refused (too deep, a NUL in a key or string), or None."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > JSON_MAX_DEPTH:
            return f"JSON nested deeper than {JSON_MAX_DEPTH} levels"
        if isinstance(item, str):
            if "\x00" in item:
                return NUL_MESSAGE
        elif isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    return None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing what json_problem refuses (and nesting deep enough to exhaust the stack)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {JSON_MAX_DEPTH} levels") from None
        if problem := json_problem(data):
            raise ParseError(problem)
        return data


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _has_nul(request: HttpRequest) -> bool:
    if b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", "")):
        return True
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        return any("\x00" in key or "\x00" in value for key, values in request.POST.lists() for value in values)
    return False


class RefuseNulMiddleware:
    """NUL in a query string or a form field (files aside) is refused before any view sees it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_MESSAGE}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
