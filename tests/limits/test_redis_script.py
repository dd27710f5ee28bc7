"""Redis exact mode in one round trip: the script against `limits`' own strategies on a
real Redis, side by side over many random sequences, and its recovery from NOSCRIPT."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import limits
import limits.aio.storage.redis.redispy as redispy
import pytest
import redis.asyncio
from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from gateway.config.limits import QuotaConfig, RateLimitingConfig
from gateway.limits.engine import Limiter, Rule, StorageUnavailable, Verdict
from gateway.limits.headers import policy_name
from gateway.limits.memory import LazyMemoryStorage
from gateway.limits.redis_script import SCRIPT, OneTrip
from tests.limits.redis_server import RedisServer

LIMITS_LUA = Path(limits.__file__).parent / "resources" / "redis" / "lua_scripts"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


class VirtualClock:
    """Stands in for `time` in the limits Redis storage and the limiter alike, so both
    see the same instants and the test needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


def _settings() -> RateLimitingConfig:
    return RateLimitingConfig(key_prefix="t" + os.urandom(6).hex(), storage_timeout=10)


def _random_rules(rng: random.Random, strategy: str) -> tuple[Rule, ...]:
    rules = []
    for index in range(rng.randint(1, 3)):
        text = f"{rng.randint(1, 6)} per {rng.choice([60, 90, 120, 300])} seconds"
        item = parse(text)
        rules.append(Rule(policy_name(f"r{index}", item), item, f"s{index}", strategy))
    return tuple(sorted(rules, key=lambda r: r.item.get_expiry()))


def _shape(verdict: Verdict) -> tuple:
    """Everything but a quota's reset, which follows the real calendar clock (checked
    apart: a second may tick between the two calls)."""
    return (
        verdict.allowed,
        verdict.refused and verdict.refused.name,
        verdict.quota_period,
        [
            (w.name, w.quota, w.window, w.remaining, None if "quota" in w.name else w.reset)
            for w in verdict.windows
        ],
    )


async def test_moving_window_script_decides_as_limits_strategies(redis_url, monkeypatch):
    """Random rules, subjects, quotas and steps of a virtual clock: every verdict (decision,
    refusing rule, remaining, reset) of the one-trip script equals the one made by
    `limits`' MovingWindowRateLimiter calls plus the usage counters, on the same Redis."""
    clock = VirtualClock()
    monkeypatch.setattr(redispy, "time", clock)
    script = Limiter(redis_url, _settings())
    reference = Limiter(redis_url, _settings())
    reference.one_trip = None  # the `limits` strategies, one call per step
    await script.start()
    script.clock = reference.clock = clock.time
    rng = random.Random(15)
    decisions = {True: 0, False: 0}
    try:
        for sequence in range(40):
            rules = _random_rules(rng, "moving-window")
            quotas = QuotaConfig(daily=rng.choice([None, rng.randint(3, 25)]))
            for _ in range(rng.randint(10, 40)):
                clock.now += rng.choice([0, 0, 0.5, 3, 11, 29, 61])
                subject = f"seq{sequence}-{rng.randint(1, 2)}"
                consumer = rng.choice([None, subject])
                expected = await reference.check(rules, subject, quotas, consumer)
                got = await script.check(rules, subject, quotas, consumer)
                assert _shape(got) == _shape(expected), (sequence, rules, quotas)
                for mine, theirs in zip(got.windows, expected.windows, strict=True):
                    assert abs(mine.reset - theirs.reset) <= 1
                decisions[got.allowed] += 1
    finally:
        await script.aclose()
        await reference.aclose()
    assert decisions[True] > 200 and decisions[False] > 200, decisions  # both sides tested


def _harness() -> str:
    """One Lua script holding `limits`' own sliding-window scripts and ours: it seeds the
    same state under two prefixes and hits both, so both decide at the same instant."""

    def function(name: str, body: str) -> str:
        return f"local function {name}(KEYS, ARGV)\n{body}\nend\n"

    return (
        function("limits_acquire", (LIMITS_LUA / "acquire_sliding_window.lua").read_text())
        + function("limits_window", (LIMITS_LUA / "sliding_window.lua").read_text())
        + function("ours", SCRIPT)
        + """
local spec = cjson.decode(ARGV[1])
local t = redis.call('time')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function seed(key, count, ttl)
    redis.call('del', key)
    if count > 0 and ttl > 0 then
        redis.call('set', key, count, 'PXAT', now_ms + ttl)
    end
end
for i, rule in ipairs(spec.rules) do
    seed(spec.theirs[i][1], rule.previous, rule.previous_ttl)
    seed(spec.theirs[i][2], rule.current, rule.current_ttl)
    seed(spec.our_keys[2 * i - 1], rule.previous, rule.previous_ttl)
    seed(spec.our_keys[2 * i], rule.current, rule.current_ttl)
end
local theirs, mine, last = {}, {}, nil
for h = 1, spec.hits do
    local passed = #spec.rules
    for i, rule in ipairs(spec.rules) do
        if not limits_acquire(spec.theirs[i], {rule.limit, rule.expiry, 1}) then
            passed = i - 1
            break
        end
    end
    theirs[h] = passed
    last = ours(spec.our_keys, spec.our_args)
    mine[h] = last[1]
end
local windows = {}
for i, rule in ipairs(spec.rules) do
    windows[i] = limits_window(spec.theirs[i], {rule.expiry})
end
return cjson.encode({theirs = theirs, mine = mine, last = last, windows = windows})
"""
    )


def _safe_ttl(rng: random.Random, count: int, expiry_ms: int, low: int, high: int) -> int:
    """A TTL whose weighted count is not within a few ms of an integer, so the two sides
    (microseconds apart inside one script) cannot land on both sides of a boundary."""
    while True:
        ttl = rng.randint(low, high)
        fraction = (count * ttl / expiry_ms) % 1
        near_shift = abs(ttl - expiry_ms) < 20
        if (not count or 0.05 < fraction < 0.95) and not near_shift:
            return ttl


async def test_sliding_window_script_decides_as_limits_scripts(redis_url):
    """Random sliding-window-counter states (previous and current windows, shifts due),
    several hits each: our script admits exactly when `limits`' acquire script admits, and
    reports the remaining count its strategy computes."""
    client = redis.asyncio.from_url(redis_url)
    harness = client.register_script(_harness())
    ours = OneTrip(client, "ours" + os.urandom(4).hex())
    strategy = SlidingWindowCounterRateLimiter(LazyMemoryStorage())  # for its arithmetic
    rng = random.Random(51)
    theirs_prefix = "theirs" + os.urandom(4).hex()
    decisions = {True: 0, False: 0}
    try:
        for case in range(300):
            rules = _random_rules(rng, "sliding-window-counter")
            subject = f"case{case}"
            spec_rules, theirs_keys = [], []
            for rule in rules:
                limit, expiry = rule.item.amount, rule.item.get_expiry()
                expiry_ms = expiry * 1000
                previous = rng.randint(0, limit + 2)
                current = rng.randint(0, limit)
                spec_rules.append(
                    {
                        "limit": limit,
                        "expiry": expiry,
                        "previous": previous,
                        "previous_ttl": _safe_ttl(rng, previous, expiry_ms, 1, expiry_ms),
                        "current": current,
                        "current_ttl": rng.choice(
                            [
                                _safe_ttl(rng, 0, expiry_ms, expiry_ms + 20, 2 * expiry_ms),
                                _safe_ttl(rng, 0, expiry_ms, 50, expiry_ms - 20),
                            ]
                        ),
                    }
                )
                key = "{" + rule.item.key_for(theirs_prefix, rule.scope, subject) + "}"
                theirs_keys.append([f"LIMITS:{key}/-1", f"LIMITS:{key}"])
            keys, args = ours.arguments(rules, subject, 0.0, None)
            spec = {
                "rules": spec_rules,
                "theirs": theirs_keys,
                "our_keys": keys,
                "our_args": [str(a) for a in args],
                "hits": rng.randint(1, 6),
            }
            result = json.loads(await harness(args=[json.dumps(spec)]))
            assert result["mine"] == result["theirs"], (case, spec)
            for passed in result["mine"]:
                decisions[passed == len(rules)] += 1
            # The state for the headers: remaining as limits' strategy computes it.
            mine = ours.windows(rules, result["last"], 0.0)
            for rule, window, (remaining, _) in zip(rules, result["windows"], mine, strict=True):
                previous, previous_ttl, current, _ = (int(v or 0) for v in window)
                weighted = strategy._weighted_count(
                    rule.item, previous, max(0, previous_ttl) / 1000, current
                )
                assert remaining == max(0, rule.item.amount - int(weighted)), (case, spec)
    finally:
        await client.aclose()
    assert decisions[True] > 100 and decisions[False] > 100, decisions


async def test_script_is_loaded_again_after_script_flush(redis_url):
    """SCRIPT FLUSH mid-run (as after a Redis restart): the next request gets NOSCRIPT,
    loads the script again and is decided; counting goes on where it was."""
    limiter = Limiter(redis_url, _settings())
    await limiter.start()
    assert limiter.one_trip is not None and limiter.one_trip.loads == 1
    item = parse("5/minute")
    rules = (Rule(policy_name("p", item), item, "plan", "moving-window"),)
    try:
        allowed = [(await limiter.check(rules, "acme")).allowed for _ in range(3)]
        await limiter.one_trip.client.script_flush()
        allowed += [(await limiter.check(rules, "acme")).allowed for _ in range(3)]
        assert allowed == [True] * 5 + [False]
        assert limiter.one_trip.loads == 2
        assert limiter.storage_errors == 0
    finally:
        await limiter.aclose()


async def test_one_request_is_one_round_trip(redis_url):
    """Hit, window state and both usage counters: one script run, one round trip; calls
    made together share a pipeline."""
    limiter = Limiter(redis_url, _settings())
    await limiter.start()
    assert limiter.one_trip is not None
    client = limiter.one_trip.client
    item = parse("5/minute")
    rules = (
        Rule(policy_name("p", item), item, "plan", "moving-window"),
        Rule(policy_name("q", item), item, "api", "sliding-window-counter"),
    )

    async def evalsha_calls() -> int:
        return (await client.info("commandstats"))["cmdstat_evalsha"]["calls"]

    try:
        before, trips = await evalsha_calls(), limiter.one_trip.round_trips
        verdict = await limiter.check(rules, "acme", QuotaConfig(daily=10), "acme")
        assert verdict.allowed
        assert [w.name for w in verdict.windows] == ["p/minute", "q/minute", "quota-daily"]
        assert await evalsha_calls() - before == 1
        assert limiter.one_trip.round_trips - trips == 1
        # Concurrent requests share round trips: 50 checks, one script run each.
        before, trips = await evalsha_calls(), limiter.one_trip.round_trips
        verdicts = await asyncio.gather(*(limiter.check(rules, f"c{i}") for i in range(50)))
        assert all(v.allowed for v in verdicts)
        assert await evalsha_calls() - before == 50
        assert limiter.one_trip.round_trips - trips < 50
    finally:
        await limiter.aclose()


async def test_a_stalled_redis_times_out_and_its_late_replies_are_never_read_as_new_ones(
    tmp_path,
):
    """Redis stops answering (SIGSTOP) with a batch on the wire: those requests get the
    fail mode within the storage timeout. Resumed, Redis still writes the old replies;
    the next requests must get their own answers, not those (the connection that
    carried the cut-off batch is dropped, never reused)."""
    server = RedisServer(tmp_path).start()
    settings = RateLimitingConfig(key_prefix="t" + os.urandom(6).hex(), storage_timeout=0.3)
    limiter = Limiter(server.url, settings)
    await limiter.start()
    item = parse("100/minute")
    rules = (Rule(policy_name("p", item), item, "plan", "moving-window"),)
    assert server.process is not None
    try:
        assert (await limiter.check(rules, "warm")).windows[0].remaining == 99
        server.process.send_signal(signal.SIGSTOP)
        started = asyncio.get_running_loop().time()
        stalled = await asyncio.gather(
            *(limiter.check(rules, f"stalled-{i}") for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, StorageUnavailable) for r in stalled), stalled
        assert asyncio.get_running_loop().time() - started < 2
        server.process.send_signal(signal.SIGCONT)
        limiter.down_until = 0.0  # the next try is not held back by the outage marker
        await asyncio.sleep(0.2)  # the stalled batch's replies are written now
        for expected in (98, 97, 96):  # "warm" again: its own count, in order
            verdict = await limiter.check(rules, "warm")
            assert verdict.windows[0].remaining == expected
        fresh = await limiter.check(rules, "fresh")
        assert fresh.windows[0].remaining == 99
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGCONT)
        await limiter.aclose()
        server.stop()
