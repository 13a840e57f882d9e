"""Request-level protections that settings name: the client's address behind the proxy, API throttles."""

from django.conf import settings
from rest_framework import throttling
from rest_framework.settings import api_settings


def client_ip(request) -> str:
    """The address login lockouts count against: nginx's X-Real-IP (which it overwrites) behind the proxy."""
    if settings.BEHIND_PROXY and request.META.get("HTTP_X_REAL_IP"):
        return request.META["HTTP_X_REAL_IP"]
    return request.META.get("REMOTE_ADDR", "")


class _FixedWindowThrottle(throttling.SimpleRateThrottle):
    """One counter per client and window. DRF's own throttles keep each request's time in the cache, a
    list as long as the rate that is read and written back whole on every request (and races)."""

    def get_rate(self) -> str | None:
        # Read when the throttle is made (DRF binds the rates when its module is imported).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None or (key := self.get_cache_key(request, view)) is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.key = f"{key}:{window}"
        try:
            count = self.cache.incr(self.key)
        except ValueError:  # the window's first request; add loses only to a concurrent first request
            count = 1 if self.cache.add(self.key, 1, self.duration + 1) else self.cache.incr(self.key)
        self.seconds_left = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self) -> float:
        return self.seconds_left


class AnonRateThrottle(_FixedWindowThrottle, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_FixedWindowThrottle, throttling.UserRateThrottle):
    pass
