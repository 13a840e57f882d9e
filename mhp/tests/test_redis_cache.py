"""The shared-client Redis cache against a real Redis: same behaviour as Django's, one client per pool."""

import threading

from django.conf import settings

from mhp.cache import SharedClientRedisCache


def _cache() -> SharedClientRedisCache:
    return SharedClientRedisCache(settings.TEST_REDIS_URL, {"KEY_PREFIX": "cache-test"})


def test_values_round_trip_expire_and_delete(clean_redis):
    cache = _cache()
    cache.set("a", {"n": 1})
    assert cache.get("a") == {"n": 1}
    assert cache.add("a", 2) is False and cache.get("a") == {"n": 1}
    assert cache.add("b", 0) is True and cache.incr("b") == 1
    cache.set("gone", 1, timeout=0)
    assert cache.get("gone", "missing") == "missing"
    cache.delete("a")
    assert cache.get("a") is None
    assert _cache().get("b") == 1  # another instance (another process, in production) sees it


def test_one_client_serves_every_call_and_thread(clean_redis):
    cache = _cache()
    seen = []

    def use() -> None:
        cache.set("k", 1)
        seen.append(cache._cache.get_client(write=True))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in seen}) == 1
    assert cache._cache.get_client() is cache._cache.get_client()
