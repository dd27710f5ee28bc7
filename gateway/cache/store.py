"""Cache entries, the in-process LRU store and the entry wire format (shared by Redis)."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from gateway.types import RawHeaders


@dataclass(slots=True)
class Entry:
    status: int
    headers: RawHeaders
    body: bytes
    stored: float  # monotonic time the response was received
    initial_age: float  # Age the upstream reported
    lifetime: float  # seconds fresh, from s-maxage / max-age / the default
    vary: tuple[tuple[bytes, bytes | None], ...] = ()  # request header values it varies on
    size: int = field(default=0)

    def age(self, now: float) -> float:
        return self.initial_age + (now - self.stored)

    def fresh(self, now: float) -> bool:
        return self.age(now) < self.lifetime


class ResponseStore:
    """Variants per key, least recently used evicted first, bounded by bytes."""

    is_async = False

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple, list[Entry]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def get(self, key: tuple, headers: RawHeaders, now: float | None = None) -> Entry | None:
        variants = self._entries.get(key)
        if not variants:
            return None
        now = time.monotonic() if now is None else now
        for entry in variants:
            if all(header_value(headers, name) == value for name, value in entry.vary):
                if not entry.fresh(now):
                    self._remove(key, entry)
                    return None
                self._entries.move_to_end(key)
                return entry
        return None

    def put(self, key: tuple, entry: Entry) -> None:
        entry.size = len(entry.body) + sum(len(k) + len(v) for k, v in entry.headers) + 200
        if entry.size > self.max_bytes:
            return
        variants = self._entries.setdefault(key, [])
        for old in [v for v in variants if v.vary == entry.vary]:
            self._remove(key, old)
        self._entries.setdefault(key, []).append(entry)
        self._entries.move_to_end(key)
        self.bytes += entry.size
        while self.bytes > self.max_bytes and self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            self._remove(oldest_key, oldest[0])

    def _remove(self, key: tuple, entry: Entry) -> None:
        variants = self._entries.get(key, [])
        if entry in variants:
            variants.remove(entry)
            self.bytes -= entry.size
        if not variants:
            self._entries.pop(key, None)

    def clear(self) -> int:
        count = len(self)
        self._entries.clear()
        self.bytes = 0
        return count


def header_value(headers: RawHeaders, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def serialise(entry: Entry) -> bytes:
    head = {
        "status": entry.status,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in entry.headers],
        "stored": time.time() - (time.monotonic() - entry.stored),  # wall clock
        "initial_age": entry.initial_age,
        "lifetime": entry.lifetime,
        "vary": [
            [n.decode("latin-1"), None if v is None else v.decode("latin-1")] for n, v in entry.vary
        ],
    }
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + entry.body


def deserialise(data: bytes) -> Entry:
    head_bytes, _, body = data.partition(b"\n")
    head = json.loads(head_bytes)
    return Entry(
        status=head["status"],
        headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in head["headers"]],
        body=body,
        stored=time.monotonic() - (time.time() - head["stored"]),  # back to monotonic
        initial_age=head["initial_age"],
        lifetime=head["lifetime"],
        vary=tuple(
            (n.encode("latin-1"), None if v is None else v.encode("latin-1"))
            for n, v in head["vary"]
        ),
        size=len(data),
    )
