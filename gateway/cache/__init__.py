"""Response cache storage (LRU bounded by bytes) and the component that owns it.

Modules: `store` (entries, the memory store, the wire format), `redis_store` (the
shared store), `registry` (every API's store), `component` (owns the registry; its
purge routes are in `gateway/admin/cache.py`).

One `ResponseStore` per API that opts in (`response-cache` policy), all reachable
through `Services.response_cache` (a `CacheRegistry`), so the admin
API can purge them: `DELETE /admin/cache` (every API) and `DELETE
/admin/cache/{api}`, with `Authorization: Bearer <admin_token>`.

Two stores, chosen per API by the policy's `storage`:

- `ResponseStore` (memory, default): in-process, synchronous (the policy calls it
  without an await), LRU bounded by `max_bytes`; each node caches on its own.
- `RedisResponseStore` (`storage: redis`): asynchronous (redis-py asyncio), shared
  by every node on the same Redis, so a response cached through one node is a hit
  on the others and a purge through any node's admin API reaches all. One Redis
  hash per cache key (`<key_prefix><api>:<sha256 of path, query, consumer>`), one
  field per `Vary` variant; a field holds the serialised entry (JSON head with
  status, headers, wall-clock store time, initial age, lifetime and vary, a
  newline, the raw body). The hash's TTL is the remaining freshness of its
  freshest variant, so Redis memory is bounded by `max_entry_bytes` per variant
  and by freshness. Purge: SCAN `<key_prefix><api>:*` + UNLINK. Redis errors never
  fail a request: a failed lookup is a miss, a failed store is skipped, and both
  count in `errors` (metric `tiergate_response_cache_storage_errors`).

The policy checks `store.is_async` once at build, so the memory path stays free
of awaits.
"""
