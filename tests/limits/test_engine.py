"""The limiter's storage selection: one config URL → the right `limits` storage."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config.limits import RateLimitingConfig
from gateway.limits.engine import Limiter
from gateway.limits.memory import LazyMemoryStorage


@pytest.mark.parametrize(
    ("url", "storage", "remote"),
    [
        ("memory://", "LazyMemoryStorage", False),
        ("async+memory://", "MemoryStorage", False),
        ("redis://127.0.0.1:6379/0", "RedisStorage", True),
        ("rediss://127.0.0.1:6380/0", "RedisStorage", True),
        ("redis+sentinel://127.0.0.1:26379/mymaster", "RedisSentinelStorage", True),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", "RedisClusterStorage", True),
    ],
)
def test_storage_urls_select_limits_storages(url, storage, remote):
    async def build():
        limiter = Limiter(url, RateLimitingConfig())
        await limiter.aclose()
        return limiter

    limiter = asyncio.run(build())
    assert type(limiter.storage).__name__ == storage
    assert limiter.remote is remote
    if url == "memory://":
        assert isinstance(limiter.storage, LazyMemoryStorage)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


def _shape(verdict) -> list:
    """A quota's reset follows the real calendar clock: a second may tick between calls."""
    return [(w.name, w.remaining, None if "quota" in w.name else w.reset) for w in verdict.windows]


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter", "mixed"])
@pytest.mark.parametrize("shared", [False, True])
async def test_memory_decides_as_limits_strategies_over_the_same_storage(
    strategy, shared, monkeypatch
):
    """The memory path calls the storage directly (no coroutine per call): its verdicts
    equal those of `limits`' strategies over the same storage, over random sequences;
    `shared`: a limit listed twice, so two rules count one key."""
    import random

    import limits.aio.strategies
    from limits import parse

    from gateway.config.limits import QuotaConfig
    from gateway.limits import memory
    from gateway.limits.engine import Rule
    from gateway.limits.headers import policy_name

    clock = _Clock()
    monkeypatch.setattr(memory, "time", clock)
    monkeypatch.setattr(limits.aio.strategies, "time", clock)
    direct = Limiter("memory://", RateLimitingConfig())
    reference = Limiter("memory://", RateLimitingConfig())
    reference.local = None  # `limits`' strategies over the same kind of storage
    direct.clock = reference.clock = clock.time
    rng = random.Random(7)
    allowed = {True: 0, False: 0}
    for sequence in range(30):
        strategies = ["moving-window", "sliding-window-counter"]
        listed = [
            Rule(
                policy_name(f"r{i}", item),
                item,
                f"s{i}",
                rng.choice(strategies) if strategy == "mixed" else strategy,
            )
            for i, item in enumerate(
                parse(f"{rng.randint(1, 6)} per {rng.choice([2, 5, 60])} seconds")
                for _ in range(rng.randint(1, 3))
            )
        ]
        if shared:  # the same limit, scope and strategy again: one storage key
            listed.append(Rule("again", listed[0].item, listed[0].scope, listed[0].strategy))
        rules = tuple(sorted(listed, key=lambda r: r.item.get_expiry()))
        quotas = QuotaConfig(
            daily=rng.choice([None, rng.randint(3, 20)]),
            monthly=rng.choice([None, None, rng.randint(3, 30)]),
        )
        for _ in range(rng.randint(10, 40)):
            clock.now += rng.choice([0, 0, 0.3, 1.1, 2.5, 7])
            subject = f"seq{sequence}-{rng.randint(1, 2)}"
            consumer = rng.choice([None, subject])
            theirs = await reference.check(rules, subject, quotas, consumer)
            ours = await direct.check(rules, subject, quotas, consumer)
            assert _shape(ours) == _shape(theirs), sequence
            assert (ours.allowed, ours.quota_period) == (theirs.allowed, theirs.quota_period)
            allowed[ours.allowed] += 1
    assert allowed[True] > 100 and allowed[False] > 100, allowed


def test_the_memory_path_keeps_bounded_state_per_rule_tuple(monkeypatch):
    """Rule tuples are kept by identity, lists never (they could change); the keys of a
    rule set and the usage keys are kept for a bounded number of subjects."""
    from limits import parse

    from gateway.limits import engine
    from gateway.limits.engine import Rule

    monkeypatch.setattr(engine, "SUBJECTS_KEPT", 3)
    monkeypatch.setattr(engine, "RULE_SETS_KEPT", 2)
    limiter = Limiter("memory://", RateLimitingConfig())
    rules = (Rule("r/minute", parse("2/minute"), "s", "moving-window"),)
    verdicts = [limiter.check_now(rules, f"c{i % 5}", None, f"c{i % 5}") for i in range(15)]
    assert [v.allowed for v in verdicts] == [True] * 10 + [False] * 5  # 2 per subject
    kept = limiter._local[id(rules)]
    assert kept.rules is rules and len(kept.keys) <= 3 and len(limiter._usage_pairs) <= 3
    listed = list(rules)
    assert limiter.check_now(listed, "c0").allowed is False  # the same key as the tuple's
    assert id(listed) not in limiter._local
    for n in range(3):  # more rule tuples than kept: the oldest are dropped, all still work
        assert limiter.check_now((Rule(f"n{n}", rules[0].item, f"s{n}", "moving-window"),), "x")
    assert len(limiter._local) <= 2
