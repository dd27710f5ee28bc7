"""The limiter: `limits`' async strategies over one storage, with the storage
timeout, the outage behaviour and the headers computed in one place.

Only `hit()` decides (atomic in every storage); window statistics are read after
the decision to fill the headers. Quotas are calendar-period counters in the same
storage (`incr`, also atomic); a request the quota refuses is given back.

On a plain Redis all of that is one script call, one round trip (redis_script.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import ceil
from typing import Any

from limits import RateLimitItem
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.storage import storage_from_string

from gateway.config.limits import QuotaConfig, RateLimitingConfig
from gateway.limits import approximate, memory
from gateway.limits.redis_errors import redis_error
from gateway.limits.redis_script import sliding_state

log = logging.getLogger("tiergate.limits")

STORAGE_DOWN = "rate-limit storage unavailable (%s); the fail mode applies; next try in %.1f s"
STORAGE_BACK = "rate-limit storage is back after %d failed requests"
SCRIPT_NOT_LOADED = "rate-limit script not loaded at start-up (%s); it is loaded on first use"
# Plain Redis: one script call per request. Sentinel and Cluster keep `limits`' calls
# (a cluster cannot run a script over keys on several nodes).
ONE_TRIP_SCHEMES = ("async+redis", "async+rediss", "async+redis+unix")


# Cache bounds of the memory path: rule sets (a few per API) and subjects per rule set.
RULE_SETS_KEPT = 10_000
SUBJECTS_KEPT = 10_000  # keys are cheap to build: the bound keeps many clients small


class StorageUnavailable(Exception):
    """The storage failed or did not answer within the storage timeout."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit as applied: its header name, the item, the key scope and strategy."""

    name: str
    item: RateLimitItem
    scope: str
    strategy: str  # "moving-window" | "sliding-window-counter"


@dataclass(slots=True)
class Window:
    """What the headers say about one rule or quota after a decision."""

    name: str
    quota: int
    window: int  # seconds
    remaining: int
    reset: int  # seconds from now, >= 0


@dataclass(slots=True)
class Verdict:
    allowed: bool
    windows: list[Window]
    refused: Window | None = None  # the rule or quota that said no
    quota_period: str | None = None  # "daily" | "monthly" when a quota said no


def storage_url(url: str) -> str:
    """Tiergate's URL → the `limits` async scheme (memory:// is the lazy storage)."""
    if url.startswith("async+"):
        return url
    if url.startswith("memory://"):
        return f"{memory.SCHEME}://"
    return f"async+{url}"


def open_storage(url: str, settings: RateLimitingConfig):
    """The `limits` storage for `url`; Redis without retries, with the storage timeout
    on sockets and (plain Redis) a bounded pool that waits for a free connection."""
    target = storage_url(url)
    if not target.startswith("async+redis"):
        return storage_from_string(target, wrap_exceptions=True)
    # Optional heavy dependency: redis-py pulls in OpenTelemetry; memory-only gateways never
    # load it.
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    timeout = settings.storage_timeout
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    scheme = target.split("://", 1)[0]
    if scheme in ("async+redis", "async+rediss"):
        options = {
            "connection_pool": BlockingConnectionPool.from_url(
                target.removeprefix("async+"),
                max_connections=settings.redis_max_connections,
                timeout=None,  # waiting for a connection is bounded by the storage timeout
                **options,
            )
        }
    return storage_from_string(target, implementation="redispy", wrap_exceptions=True, **options)


@dataclass(frozen=True, slots=True)
class Periods:
    """The quota periods of one second: period_keys() and its parts, unpacked once."""

    second: int
    named: dict[str, tuple[str, int, int]]  # period_keys()
    labels: tuple[str, str]  # (day, month)
    daily_ends: int  # seconds until the day ends
    monthly_ends: int
    monthly_length: int

    @classmethod
    def at(cls, second: int) -> Periods:
        named = period_keys(datetime.fromtimestamp(second, UTC))
        (day, day_ends, _), (month, month_ends, month_length) = named["daily"], named["monthly"]
        return cls(second, named, (day, month), day_ends, month_ends, month_length)


_periods = Periods(0, {}, ("", ""), 0, 0, 0)


def periods_now() -> Periods:
    """The quota periods of this second, computed at most once per second (hot path)."""
    global _periods
    second = int(time.time())
    if _periods.second != second:
        _periods = Periods.at(second)
    return _periods


def current_periods() -> dict[str, tuple[str, int, int]]:
    """period_keys(now), computed at most once per second (it is on the hot path)."""
    return periods_now().named


def period_keys(now: datetime) -> dict[str, tuple[str, int, int]]:
    """Quota period → (period label, seconds until it ends, its length in seconds)."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = day_start + timedelta(days=1)
    month_start = day_start.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    return {
        "daily": (
            day_start.strftime("%Y-%m-%d"),
            ceil((day_end - now).total_seconds()),
            86400,
        ),
        "monthly": (
            month_start.strftime("%Y-%m"),
            ceil((month_end - now).total_seconds()),
            int((month_end - month_start).total_seconds()),
        ),
    }


class Limiter:
    """Shared by every rate-limit policy and guard of one gateway (Services.limiter)."""

    def __init__(self, url: str, settings: RateLimitingConfig) -> None:
        self.url = url
        self.settings = settings
        self.prefix = settings.key_prefix
        self.storage = open_storage(url, settings)
        self.remote = not storage_url(url).startswith((f"{memory.SCHEME}://", "async+memory://"))
        self.strategies: dict[str, RateLimiter] = {
            "moving-window": MovingWindowRateLimiter(self.storage),
            "sliding-window-counter": SlidingWindowCounterRateLimiter(self.storage),
        }
        self.timeout = settings.storage_timeout
        self.clock = time.time
        # Tiergate's memory storage: decided synchronously, no coroutine per call.
        self.local = self.storage if isinstance(self.storage, memory.LazyMemoryStorage) else None
        self._local: dict[int, LocalRules] = {}  # id(rules) -> their memory-path form
        self._usage_pairs: dict[str, tuple[str, str]] = {}  # consumer -> usage keys
        self._usage_labels: tuple[str, str] = ("", "")  # the periods of _usage_pairs
        self.one_trip = None
        self.batched = None
        if storage_url(url).split("://", 1)[0] in ONE_TRIP_SCHEMES:
            # redis_script imports redis-py (an optional heavy dependency, see open_storage).
            from gateway.limits.redis_script import OneTrip

            self.one_trip = OneTrip(self.storage.bridge.storage, self.prefix)
            if settings.sync is not None:
                self.batched = approximate.BatchedCounters(
                    self.storage.bridge.storage, self.prefix, settings.sync, self.timeout
                )
        self.storage_errors = 0  # requests that met an unavailable storage (metric)
        self.down_until = 0.0
        self.failed_since_down = 0

    async def start(self) -> None:
        """Load the one-round-trip script; a Redis that is down now gets it on first use.
        In approximate mode, start the sync task instead."""
        if self.batched is not None:
            self.batched.start()
            return
        if self.one_trip is None:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self.one_trip.load()
        except (redis_error(), OSError, TimeoutError) as exc:
            log.warning(SCRIPT_NOT_LOADED, exc)

    # -- deciding ------------------------------------------------------------

    async def check(
        self,
        rules: Sequence[Rule],
        subject: str,
        quotas: QuotaConfig | None = None,
        consumer: str | None = None,
        count_usage: bool = True,
    ) -> Verdict:
        """Hit every rule for `subject`, then the consumer's quotas; raise
        StorageUnavailable when the storage fails or is slower than the timeout."""
        if self.batched is not None:  # approximate mode: decided here, synced in batches
            usage = self._usage_keys(quotas, consumer, count_usage)
            missing = self.batched.missing(rules, subject, usage)
            if missing:  # first sight of a key in this window: read its total once
                await self.batched.prime(missing)
            return self._check_batched(rules, subject, quotas, usage)
        if self.local is not None:
            return self.check_now(rules, subject, quotas, consumer, count_usage)
        if self.down_until and time.monotonic() < self.down_until:
            self._failed()
            raise StorageUnavailable("storage marked down after a recent failure")
        try:
            if self.remote:
                async with asyncio.timeout(self.timeout):
                    verdict = await self._check(rules, subject, quotas, consumer, count_usage)
            else:
                verdict = await self._check(rules, subject, quotas, consumer, count_usage)
        except TimeoutError:
            # Slow, not gone (or the loop is overloaded): this request only gets the fail
            # mode; marking the storage down would lift the limits for everyone.
            self._failed()
            raise StorageUnavailable(f"no answer within {self.timeout} s") from None
        except (StorageError, redis_error(), OSError) as exc:
            self._mark_down(exc)
            raise StorageUnavailable(str(exc) or type(exc).__name__) from None
        if self.down_until:
            log.warning(STORAGE_BACK, self.failed_since_down)
            self.down_until = 0.0
            self.failed_since_down = 0
        return verdict

    async def _check(
        self,
        rules: Sequence[Rule],
        subject: str,
        quotas: QuotaConfig | None,
        consumer: str | None,
        count_usage: bool,
    ) -> Verdict:
        if self.one_trip is not None:
            return await self._check_one_trip(rules, subject, quotas, consumer, count_usage)
        refused: Window | None = None
        hit = len(rules)
        for index, rule in enumerate(rules):
            strategy = self.strategies[rule.strategy]
            if not await strategy.hit(rule.item, self.prefix, rule.scope, subject):
                hit = index
                break
        windows = [await self._window(rule, subject) for rule in rules]
        if hit < len(rules):
            refused = windows[hit]
            refused.remaining = 0
            refused.reset = max(refused.reset, 1)
            return Verdict(False, windows, refused)
        period = None
        if consumer is not None and (count_usage or _has_quota(quotas)):
            quota_windows, period = await self._quotas(consumer, quotas)
            windows.extend(quota_windows)
            if period is not None:
                refused = next(w for w in quota_windows if w.name.endswith(period))
        return Verdict(refused is None, windows, refused, period)

    async def _check_one_trip(
        self,
        rules: Sequence[Rule],
        subject: str,
        quotas: QuotaConfig | None,
        consumer: str | None,
        count_usage: bool,
    ) -> Verdict:
        assert self.one_trip is not None
        now = self.clock()
        usage = None
        periods = current_periods()
        if consumer is not None and (count_usage or _has_quota(quotas)):
            (day, day_ends, _), (month, month_ends, _) = periods["daily"], periods["monthly"]
            usage = (
                self.usage_key(consumer, "daily", day),
                self.usage_key(consumer, "monthly", month),
                (quotas.daily or 0) if quotas else 0,
                (quotas.monthly or 0) if quotas else 0,
                day_ends + 86400,
                month_ends + 86400,
            )
        keys, args = self.one_trip.arguments(rules, subject, now, usage)
        reply = await self.one_trip.call(keys, args)
        windows = [
            Window(rule.name, rule.item.amount, rule.item.get_expiry(), remaining, reset)
            for rule, (remaining, reset) in zip(
                rules, self.one_trip.windows(rules, reply, now), strict=True
            )
        ]
        passed = reply[0]
        if passed < len(rules):
            return _refusal(windows, passed)
        if usage is None:
            return Verdict(True, windows)
        daily, monthly, code = reply[-3:]
        return self._with_quotas(windows, [daily, monthly], (None, 0, 1)[code], quotas)

    def _local_rules(self, rules: Sequence[Rule]) -> LocalRules:
        """The memory path's form of `rules`, kept per rule tuple (the policies keep theirs
        for the gateway's life) and looked up by identity (check_now), as hashing the
        rules costs more than the decision itself."""
        local = LocalRules(rules, self.prefix)
        if type(rules) is tuple:  # immutable: safe to key by identity while it is kept
            if len(self._local) >= RULE_SETS_KEPT:
                self._local.clear()
            self._local[id(rules)] = local
        return local

    def check_now(
        self,
        rules: Sequence[Rule],
        subject: str,
        quotas: QuotaConfig | None = None,
        consumer: str | None = None,
        count_usage: bool = True,
    ) -> Verdict:
        """`check` on Tiergate's memory storage (`self.local`), decided without awaiting:
        the same keys and decisions as `limits`' strategies over it."""
        storage = self.local
        assert storage is not None
        now = self.clock()
        local = self._local.get(id(rules))
        if local is None or local.rules is not rules:
            local = self._local_rules(rules)
        keys = local.keys.get(subject) or local.keys_for(subject)
        if local.shared_keys:
            passed, windows = _hit_then_read(storage, local.entries, keys, now)
        else:
            passed, windows = _hit_and_read(storage, local.entries, keys, now)
        if passed < len(windows):
            return _refusal(windows, passed)
        if consumer is None or not (count_usage or _has_quota(quotas)):
            return Verdict(True, windows)
        periods = periods_now()
        day_key, month_key = self._usage_pair(consumer, periods)
        day_expiry, month_expiry = periods.daily_ends + 86400, periods.monthly_ends + 86400
        daily, monthly = storage.incr_pair_now(day_key, day_expiry, month_key, month_expiry, now)
        if quotas is None:  # usage counted, no quota to apply or show
            return Verdict(True, windows)
        refused_at = _quota_refusal(daily, monthly, quotas)
        if refused_at is not None:  # give the unit back: usage counts admitted requests only
            daily = storage.incr_now(day_key, day_expiry, -1, now)
            monthly = storage.incr_now(month_key, month_expiry, -1, now)
        return self._with_quotas(windows, [daily, monthly], refused_at, quotas, periods)

    def _usage_pair(self, consumer: str, periods: Periods) -> tuple[str, str]:
        """The consumer's (daily, monthly) usage keys, formatted once per period."""
        labels = periods.labels
        if labels is not self._usage_labels:
            if labels != self._usage_labels:
                self._usage_pairs.clear()
            self._usage_labels = labels
        pair = self._usage_pairs.get(consumer)
        if pair is None:
            pair = (
                self.usage_key(consumer, "daily", labels[0]),
                self.usage_key(consumer, "monthly", labels[1]),
            )
            if len(self._usage_pairs) >= SUBJECTS_KEPT:
                self._usage_pairs.clear()
            self._usage_pairs[consumer] = pair
        return pair

    def _with_quotas(
        self,
        windows: list[Window],
        counts: list[int],
        refused_at: int | None,
        quotas: QuotaConfig | None,
        now: Periods | None = None,
    ) -> Verdict:
        if refused_at is None and not _has_quota(quotas):
            return Verdict(True, windows)  # usage counted, no quota to show or apply
        periods = (now or periods_now()).named
        period = None if refused_at is None else list(periods)[refused_at]
        by_period = dict(zip(periods, counts, strict=True))
        quota_windows = _quota_windows(by_period, period, quotas, periods)
        windows.extend(quota_windows)
        if period is None:
            return Verdict(True, windows)
        refused = next(w for w in quota_windows if w.name.endswith(period))
        return Verdict(False, windows, refused, period)

    def _usage_keys(
        self, quotas: QuotaConfig | None, consumer: str | None, count_usage: bool
    ) -> list[tuple[str, int, int | None]]:
        """(usage key, seconds to the period's end, quota or None) per period, or []."""
        if consumer is None or not (count_usage or _has_quota(quotas)):
            return []
        return [
            (
                self.usage_key(consumer, period, label),
                ends_in,
                getattr(quotas, period, None) if quotas else None,
            )
            for period, (label, ends_in, _) in current_periods().items()
        ]

    def _check_batched(
        self,
        rules: Sequence[Rule],
        subject: str,
        quotas: QuotaConfig | None,
        keys: list[tuple[str, int, int | None]],
    ) -> Verdict:
        assert self.batched is not None
        passed, states = approximate.hit(self.batched, rules, subject)
        windows = [
            Window(rule.name, rule.item.amount, rule.item.get_expiry(), remaining, reset)
            for rule, (remaining, reset) in zip(rules, states, strict=True)
        ]
        if passed < len(rules):
            return _refusal(windows, passed)
        if not keys:
            return Verdict(True, windows)
        counts, index = approximate.count_usage(self.batched, keys)
        return self._with_quotas(windows, counts, index, quotas)

    async def _window(self, rule: Rule, subject: str) -> Window:
        stats = await self.strategies[rule.strategy].get_window_stats(
            rule.item, self.prefix, rule.scope, subject
        )
        return Window(
            rule.name,
            rule.item.amount,
            rule.item.get_expiry(),
            max(0, int(stats.remaining)),
            max(0, ceil(stats.reset_time - self.clock())),
        )

    async def _quotas(
        self, consumer: str, quotas: QuotaConfig | None
    ) -> tuple[list[Window], str | None]:
        periods = current_periods()
        counts = {}
        for period, (label, ends_in, _) in periods.items():
            key = self.usage_key(consumer, period, label)
            counts[period] = await self.storage.incr(key, ends_in + 86400)
        refused = None
        for period in ("daily", "monthly"):
            limit = getattr(quotas, period, None) if quotas else None
            if limit is not None and counts[period] > limit:
                refused = period
        if refused is not None:  # give the unit back: usage counts admitted requests only
            for period, (label, ends_in, _) in periods.items():
                key = self.usage_key(consumer, period, label)
                counts[period] = await self.storage.incr(key, ends_in + 86400, amount=-1)
        return _quota_windows(counts, refused, quotas, periods), refused

    # -- usage ---------------------------------------------------------------

    def usage_key(self, consumer: str, period: str, label: str) -> str:
        return f"{self.prefix}/usage/{consumer}/{period}/{label}"

    async def usage(self, consumer: str, quotas: QuotaConfig | None = None) -> dict[str, object]:
        """Requests admitted for `consumer` this UTC day and month (and its quotas)."""
        result: dict[str, object] = {"consumer": consumer}
        for period, (label, ends_in, _) in period_keys(datetime.now(UTC)).items():
            try:
                async with asyncio.timeout(self.timeout * 10):
                    used = await self.storage.get(self.usage_key(consumer, period, label))
            except (StorageError, OSError, TimeoutError) as exc:
                raise StorageUnavailable(str(exc) or type(exc).__name__) from None
            limit = getattr(quotas, period, None) if quotas else None
            result[period] = {
                "period": label,
                "used": used,
                "quota": limit,
                "remaining": None if limit is None else max(0, limit - used),
                "resets_in": ends_in,
            }
        return result

    # -- health --------------------------------------------------------------

    def _failed(self) -> None:
        self.storage_errors += 1
        self.failed_since_down += 1

    def _mark_down(self, exc: BaseException) -> None:
        self._failed()
        if not self.down_until or self.failed_since_down == 1:
            log.warning(STORAGE_DOWN, repr(exc), self.settings.retry_after_error)
        self.down_until = time.monotonic() + self.settings.retry_after_error

    @property
    def retry_after(self) -> int:
        """Seconds a fail-closed 503 asks clients to wait."""
        return max(1, ceil(self.settings.retry_after_error))

    async def aclose(self) -> None:
        if self.batched is not None:
            await self.batched.aclose()
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()


class LocalRule:
    """One rule as the memory path applies it: its numbers and key parts, read once."""

    __slots__ = ("amount", "expiry", "head", "moving", "name", "tail")

    def __init__(self, rule: Rule, prefix: str) -> None:
        self.name = rule.name
        self.amount = rule.item.amount
        self.expiry = rule.item.get_expiry()
        self.moving = rule.strategy == "moving-window"
        # `limits`' key_for(prefix, scope, subject) = head + subject + tail
        self.head, self.tail = rule.item.key_for(prefix, rule.scope, "\0").split("\0")

    def hit(self, storage: memory.LazyMemoryStorage, key: str, now: float) -> tuple[bool, Window]:
        """Take one unit if the window has room: (taken, the window as it is afterwards)."""
        amount, expiry = self.amount, self.expiry
        if self.moving:
            admitted, start, count = storage.hit_moving_now(key, amount, expiry, now)
            remaining, reset = amount - count, max(0, ceil(start + expiry - now))
        else:
            admitted, previous, previous_in, current, current_in = storage.hit_sliding_now(
                key, amount, expiry, now
            )
            remaining, reset = sliding_state(
                amount, expiry, previous, previous_in, current, current_in
            )
        return admitted, Window(self.name, amount, expiry, max(0, remaining), reset)

    def acquire(self, storage: memory.LazyMemoryStorage, key: str, now: float) -> bool:
        if self.moving:
            return storage.acquire_entry_now(key, self.amount, self.expiry, 1, now)
        return storage.acquire_sliding_now(key, self.amount, self.expiry, 1, now)

    def read(self, storage: memory.LazyMemoryStorage, key: str, now: float) -> Window:
        amount, expiry = self.amount, self.expiry
        if self.moving:
            start, count = storage.moving_window_now(key, expiry, now)
            remaining, reset = amount - count, max(0, ceil(start + expiry - now))
        else:
            remaining, reset = sliding_state(
                amount, expiry, *storage.sliding_window_now(key, expiry, now)
            )
        return Window(self.name, amount, expiry, max(0, remaining), reset)


class LocalRules:
    """A rule tuple as the memory path applies it, with its storage keys per subject."""

    __slots__ = ("entries", "keys", "rules", "shared_keys")

    def __init__(self, rules: Sequence[Rule], prefix: str) -> None:
        self.rules = rules
        self.entries = tuple(LocalRule(rule, prefix) for rule in rules)
        # Two rules counting one key (the same limit listed twice) see each other's hits:
        # their windows are read after every hit, as `limits`' strategies would.
        counted = [(e.head, e.tail, e.moving) for e in self.entries]
        self.shared_keys = len(set(counted)) < len(counted)
        self.keys: dict[str, tuple[str, ...]] = {}

    def keys_for(self, subject: str) -> tuple[str, ...]:
        keys = self.keys.get(subject)
        if keys is None:
            keys = tuple(e.head + subject + e.tail for e in self.entries)
            if len(self.keys) >= SUBJECTS_KEPT:
                self.keys.clear()
            self.keys[subject] = keys
        return keys


def _hit_and_read(
    storage: memory.LazyMemoryStorage,
    entries: tuple[LocalRule, ...],
    keys: tuple[str, ...],
    now: float,
) -> tuple[int, list[Window]]:
    """Hit each rule until one refuses, reading its window in the same pass (the rules
    after a refusal are only read): (rules that admitted, windows)."""
    passed = len(entries)
    windows = []
    for index, entry in enumerate(entries):
        if index < passed:
            admitted, window = entry.hit(storage, keys[index], now)
            if not admitted:
                passed = index
        else:
            window = entry.read(storage, keys[index], now)
        windows.append(window)
    return passed, windows


def _hit_then_read(
    storage: memory.LazyMemoryStorage,
    entries: tuple[LocalRule, ...],
    keys: tuple[str, ...],
    now: float,
) -> tuple[int, list[Window]]:
    """Hit each rule until one refuses, then read every window."""
    passed = len(entries)
    for index, entry in enumerate(entries):
        if not entry.acquire(storage, keys[index], now):
            passed = index
            break
    return passed, [entry.read(storage, key, now) for entry, key in zip(entries, keys, strict=True)]


def _quota_refusal(daily: int, monthly: int, quotas: QuotaConfig) -> int | None:
    """0 (daily) or 1 (monthly) when a count is over its quota; monthly when both are."""
    refused_at = None
    if quotas.daily is not None and daily > quotas.daily:
        refused_at = 0
    if quotas.monthly is not None and monthly > quotas.monthly:
        refused_at = 1
    return refused_at


def _refusal(windows: list[Window], index: int) -> Verdict:
    """Rule `index` said no: its window shows nothing left, for at least a second."""
    refused = windows[index]
    refused.remaining = 0
    refused.reset = max(refused.reset, 1)
    return Verdict(False, windows, refused)


def _quota_windows(
    counts: dict[str, int],
    refused: str | None,
    quotas: QuotaConfig | None,
    periods: dict[str, tuple[str, int, int]],
) -> list[Window]:
    windows = []
    for period, (_, ends_in, length) in periods.items():
        limit = getattr(quotas, period, None) if quotas else None
        if limit is not None:
            remaining = 0 if refused == period else max(0, limit - counts[period])
            windows.append(Window(f"quota-{period}", limit, length, remaining, ends_in))
    return windows


def _has_quota(quotas: QuotaConfig | None) -> bool:
    return quotas is not None and (quotas.daily is not None or quotas.monthly is not None)
