"""Django's Redis cache, keeping one redis client per connection pool instead of making one per call.

Django builds a new `redis.Redis` for every cache operation, and each one copies its ~170 response
callbacks into a fresh dictionary: with sessions read from the cache on every request, that was about
a tenth of the labeling API's CPU. A client is only a view on its pool (which owns the connections
and is safe across threads and forks), so one per pool serves every thread.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _ClientPerPool(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class SharedClientRedisCache(RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = _ClientPerPool
