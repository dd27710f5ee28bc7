"""Redis exact mode in one round trip: a Lua script (EVALSHA; loaded at start-up and
again after NOSCRIPT) hits every rule, reads the window state the headers need and
counts usage, atomically. The keys and the arithmetic are those of the `limits`
library's own Redis scripts, so admission decisions are the same as its strategies'.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from math import ceil, floor, inf

from hiredis import pack_command
from limits import RateLimitItem

from gateway.limits.redis_errors import no_script_error, response_error

LIMITS_KEY_PREFIX = "LIMITS"  # the `limits` Redis storage's default key prefix

SCRIPT = """\
-- One round trip per request: every rule's hit and window state, then the usage
-- counters, atomically. Same keys and the same arithmetic as the `limits` library's
-- own scripts (acquire_moving_window, moving_window, acquire_sliding_window,
-- sliding_window, incr_expire), so both can serve the same keys.
--
-- ARGV: now (client clock, seconds), number of rules, then per rule kind
-- (1 moving window, 2 sliding window counter), limit, expiry (s); then usage mode
-- (0 none, 1 count), daily quota, monthly quota (0: none), daily ttl, monthly ttl.
-- KEYS: one key per moving-window rule, two (previous, current) per sliding-window
-- rule, in rule order; then the daily and monthly usage keys when usage is counted.
-- Returns {rules admitted before the first refusal, per-rule state..., daily count,
-- monthly count, refused quota (0 none, 1 daily, 2 monthly)}; per-rule state is
-- {oldest timestamp (string), count} for a moving window and {previous count,
-- previous pttl, current count, current pttl} for a sliding window.

local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local kinds, limits_, expiries, first_key = {}, {}, {}, {}
local a, k = 3, 1
for i = 1, n do
    kinds[i] = tonumber(ARGV[a])
    limits_[i] = tonumber(ARGV[a + 1])
    expiries[i] = tonumber(ARGV[a + 2])
    first_key[i] = k
    a = a + 3
    if kinds[i] == 1 then k = k + 1 else k = k + 2 end
end

local function hit_moving(key, limit, expiry)
    local entry = redis.call('lindex', key, limit - 1)
    if entry and tonumber(entry) >= now - expiry then
        return false
    end
    redis.call('lpush', key, now)
    redis.call('ltrim', key, 0, limit - 1)
    redis.call('expire', key, expiry)
    return true
end

local function shift_sliding(previous, current, expiry_ms)
    local current_ttl = tonumber(redis.call('pttl', current))
    if current_ttl > 0 and current_ttl < expiry_ms then
        redis.call('rename', current, previous)
        redis.call('set', current, 0, 'PX', current_ttl + expiry_ms)
    end
end

local function hit_sliding(previous, current, limit, expiry_ms)
    shift_sliding(previous, current, expiry_ms)
    local previous_count = tonumber(redis.call('get', previous)) or 0
    local previous_ttl = tonumber(redis.call('pttl', previous)) or 0
    local current_count = tonumber(redis.call('get', current)) or 0
    if previous_ttl <= 0 then
        previous_ttl = 0
    end
    if math.floor(previous_count * previous_ttl / expiry_ms) + current_count + 1 > limit then
        return false
    end
    if redis.call('exists', current) == 1 then
        redis.call('incrby', current, 1)
    else
        redis.call('set', current, 1, 'PX', expiry_ms * 2)
    end
    return true
end

local passed = n
for i = 1, n do
    local ok
    if kinds[i] == 1 then
        ok = hit_moving(KEYS[first_key[i]], limits_[i], expiries[i])
    else
        ok = hit_sliding(KEYS[first_key[i]], KEYS[first_key[i] + 1], limits_[i], expiries[i] * 1000)
    end
    if not ok then
        passed = i - 1
        break
    end
end

local result = {passed}
for i = 1, n do
    local key = KEYS[first_key[i]]
    if kinds[i] == 1 then
        local target = now - expiries[i]
        local low, high, found = 0, limits_[i] - 1, nil
        while low <= high do
            local mid = math.floor((low + high) / 2)
            local value = tonumber(redis.call('lindex', key, mid))
            if value and value >= target then
                found = mid
                low = mid + 1
            else
                high = mid - 1
            end
        end
        if found then
            result[#result + 1] = tostring(tonumber(redis.call('lindex', key, found)))
            result[#result + 1] = found + 1
        else
            result[#result + 1] = ''
            result[#result + 1] = 0
        end
    else
        local current = KEYS[first_key[i] + 1]
        shift_sliding(key, current, expiries[i] * 1000)
        result[#result + 1] = tonumber(redis.call('get', key)) or 0
        result[#result + 1] = tonumber(redis.call('pttl', key))
        result[#result + 1] = tonumber(redis.call('get', current)) or 0
        result[#result + 1] = tonumber(redis.call('pttl', current))
    end
end

a = 3 + 3 * n
if passed == n and tonumber(ARGV[a]) == 1 then
    local quotas = {tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])}
    local ttls = {ARGV[a + 3], ARGV[a + 4]}
    local counts, refused = {}, 0
    for p = 1, 2 do
        counts[p] = redis.call('incrby', KEYS[k + p - 1], 1)
        if counts[p] == 1 then
            redis.call('expire', KEYS[k + p - 1], ttls[p])
        end
        if quotas[p] > 0 and counts[p] > quotas[p] then
            refused = p
        end
    end
    if refused > 0 then
        for p = 1, 2 do
            counts[p] = redis.call('incrby', KEYS[k + p - 1], -1)
        end
    end
    result[#result + 1] = counts[1]
    result[#result + 1] = counts[2]
    result[#result + 1] = refused
end
return result
"""
SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()
MOVING, SLIDING = 1, 2

NO_SCRIPT_SUPPORT = (
    "one-round-trip mode needs a plain Redis (redis://, rediss://, redis+unix://); "
    "{scheme} uses the `limits` strategies, one round trip per call"
)


class OneTrip:
    """The script over one redis-py client (its connection pool is this process's)."""

    def __init__(self, client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.sha = SHA
        self.loads = 0  # SCRIPT LOADs done (start-up, and after each NOSCRIPT)
        self.round_trips = 0  # pipelines sent (each carries the calls of one loop turn)
        self._queue: list[tuple[list[str], list[object], asyncio.Future]] = []
        self._sending: set[asyncio.Task] = set()
        self._keys: dict[object, tuple[str, str, int, int, int]] = {}

    async def load(self) -> None:
        self.sha = await self.client.script_load(SCRIPT)
        self.loads += 1

    def _rule(self, rule) -> tuple[str, str, int, int, int]:
        """(key head, key tail, kind, limit, expiry): the rule's half of the key, once."""
        known = self._keys.get(rule)
        if known is None:
            item: RateLimitItem = rule.item
            head, tail = item.key_for(self.prefix, rule.scope, "\0").split("\0")
            kind = MOVING if rule.strategy == "moving-window" else SLIDING
            known = (f"{LIMITS_KEY_PREFIX}:{head}", tail, kind, item.amount, item.get_expiry())
            if len(self._keys) < 100_000:
                self._keys[rule] = known
        return known

    def arguments(
        self,
        rules: Sequence,
        subject: str,
        now: float,
        usage: tuple[str, str, int, int, int, int] | None,
    ) -> tuple[list[str], list[object]]:
        """KEYS and ARGV of one call; `usage` = (daily key, monthly key, daily quota,
        monthly quota (0: none), daily ttl, monthly ttl) or None."""
        keys: list[str] = []
        args: list[object] = [repr(now), len(rules)]
        for rule in rules:
            head, tail, kind, limit, expiry = self._rule(rule)
            if kind == MOVING:
                keys.append(head + subject + tail)
            else:
                current = "{" + head[len(LIMITS_KEY_PREFIX) + 1 :] + subject + tail + "}"
                keys.append(f"{LIMITS_KEY_PREFIX}:{current}/-1")
                keys.append(f"{LIMITS_KEY_PREFIX}:{current}")
            args += (kind, limit, expiry)
        if usage is None:
            args.append(0)
        else:
            daily, monthly, *numbers = usage
            keys += (f"{LIMITS_KEY_PREFIX}:{daily}", f"{LIMITS_KEY_PREFIX}:{monthly}")
            args += (1, *numbers)
        return keys, args

    async def call(self, keys: list[str], args: list[object]) -> list:
        """One script call. The calls made in one turn of the event loop go out together
        in one pipeline (one connection, one write), each still one atomic script run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list] = loop.create_future()
        if not self._queue:
            # The task's first step runs on the next turn, after every call of this one
            # has queued: it takes them all and sends at once (a call_soon that then
            # started a task cost every request one more turn of the loop).
            task = loop.create_task(self._send_queued())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        self._queue.append((keys, args, future))
        return await future

    async def _send_queued(self) -> None:
        batch, self._queue = self._queue, []
        await self._send(batch)

    async def _send(self, batch: list[tuple[list[str], list[object], asyncio.Future]]) -> None:
        try:
            replies = await self._pipeline(batch)
            again = [i for i, reply in enumerate(replies) if isinstance(reply, no_script_error())]
            if again:  # Redis restarted or SCRIPT FLUSH: load it again, retry those once
                await self.load()
                retried = await self._pipeline([batch[i] for i in again])
                for i, reply in zip(again, retried, strict=True):
                    replies[i] = reply
        except Exception as exc:  # every waiting request gets the error
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its request gave up (storage timeout)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _pipeline(self, batch: list[tuple[list[str], list[object], asyncio.Future]]) -> list:
        """The batch's EVALSHAs in one write on one pooled connection, then their replies
        in order (an error reply stays in its place). Packed by hiredis in one call each:
        redis-py's pipeline encoded every argument in Python, which cost more than the
        rest of the round trip."""
        packed = b"".join(
            # hiredis's stub types the command as a 1-tuple; it takes any length.
            pack_command(("EVALSHA", self.sha, len(keys), *keys, *args))  # type: ignore[arg-type]
            for keys, args, _ in batch
        )
        pool = self.client.connection_pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(packed, check_health=False)
            self.round_trips += 1
            replies = []
            for _ in batch:
                try:
                    replies.append(await connection.read_response())
                except response_error() as exc:
                    replies.append(exc)
        except BaseException:
            # Cut off mid-answer (an error, a timeout, a cancel): the replies still on
            # the wire must never be read as another batch's.
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)
        return replies

    def windows(self, rules: Sequence, reply: list, now: float) -> list[tuple[int, int]]:
        """(remaining, seconds to reset) per rule, as `limits`' get_window_stats says."""
        states = []
        i = 1
        for rule in rules:
            _, _, kind, amount, expiry = self._rule(rule)
            if kind == MOVING:
                oldest, count = reply[i], reply[i + 1]
                i += 2
                reset = (float(oldest) if count else now) + expiry
                remaining = amount - count
            else:
                previous, previous_ttl, current, current_ttl = reply[i : i + 4]
                i += 4
                states.append(
                    sliding_state(
                        amount,
                        expiry,
                        previous,
                        max(0, previous_ttl) / 1000,
                        current,
                        max(0, current_ttl) / 1000,
                    )
                )
                continue
            states.append((max(0, int(remaining)), max(0, ceil(reset - now))))
        return states


def sliding_state(
    amount: int, expiry: int, previous: int, previous_in: float, current: int, current_in: float
) -> tuple[int, int]:
    """(remaining, seconds to reset) of a sliding window counter, as `limits`'
    SlidingWindowCounterRateLimiter.get_window_stats computes them."""
    remaining = max(0, amount - floor(previous * previous_in / expiry + current))
    if not (previous or current):
        return remaining, 0
    reset_in = min(
        previous_in % (expiry / previous) if previous else inf,
        current_in % expiry if current else inf,
    )
    return remaining, max(0, ceil(reset_in))
