import io
import json
import time

import httpx

from gateway.observability import access_log
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.tokens import IdP, claims, rsa_key, sign


def _lines(stream: io.BytesIO, count: int) -> list[dict]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = stream.getvalue().splitlines()
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.02)
    raise AssertionError(f"expected {count} access-log lines, got {stream.getvalue()!r}")


def test_one_json_line_per_request_without_credentials(tmp_path, httpbin_url, monkeypatch):
    monkeypatch.setattr(access_log, "_sink", None)
    stream = io.BytesIO()
    access_log.configure_access_log(stream)
    config = make_config(
        tmp_path, [{"name": "bin", "upstream": {"targets": [httpbin_url]}}], access_log=True
    )
    with serve_asgi(build_gateway(config)) as gw, httpx.Client(base_url=gw.url) as client:
        ids = []
        for status in (200, 418, 200):
            r = client.get(
                f"/experience/bin/v1/status/{status}?token=secret-query",
                headers={"Authorization": "Bearer secret-token", "X-API-Key": "secret-key"},
            )
            assert r.status_code == status
            ids.append(r.headers["x-request-id"])
        lines = _lines(stream, 3)
    assert [line["request_id"] for line in lines] == ids
    assert [line["status"] for line in lines] == [200, 418, 200]
    first = lines[0]
    assert first["api"] == "bin" and first["tier"] == "experience" and first["method"] == "GET"
    assert first["path"] == "/experience/bin/v1/status/200"
    assert first["total_ms"] >= first["upstream_ms"] > 0
    assert b"secret" not in stream.getvalue()


def test_without_the_sink_lines_go_to_the_logger(tmp_path, httpbin_url, monkeypatch, caplog):
    monkeypatch.setattr(access_log, "_sink", None)
    config = make_config(
        tmp_path, [{"name": "bin", "upstream": {"targets": [httpbin_url]}}], access_log=True
    )
    with (
        caplog.at_level("INFO", logger=access_log.LOGGER_NAME),
        serve_asgi(build_gateway(config)) as gw,
    ):
        r = httpx.get(f"{gw.url}/experience/bin/v1/get")
    mine = [rec for rec in caplog.records if rec.name == access_log.LOGGER_NAME]
    lines = [json.loads(rec.getMessage()) for rec in mine]
    assert [line["request_id"] for line in lines] == [r.headers["x-request-id"]]


class _StuckStream:
    """A stdout whose reader stopped reading: every write blocks until released."""

    def __init__(self) -> None:
        import threading

        self.released = threading.Event()
        self.data = b""

    def write(self, data: bytes) -> int:
        self.released.wait(10)
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass


async def test_a_blocked_stdout_does_not_block_the_event_loop():
    import asyncio
    import time as clock

    from gateway.observability.access_log import _Sink

    stream = _StuckStream()
    sink = _Sink(stream)  # type: ignore[arg-type]
    started = clock.monotonic()
    for batch in range(3):  # three loop iterations, one batch each
        sink(b'{"n":%d}' % batch)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert clock.monotonic() - started < 1  # the loop went on while the write hung
    assert stream.data == b""
    stream.released.set()
    sink.close()  # at shutdown: everything pending is written
    assert stream.data == b'{"n":0}\n{"n":1}\n{"n":2}\n'


def test_lines_stay_ascii_whatever_an_identity_provider_names_a_consumer(
    tmp_path, httpbin_url, monkeypatch
):
    """A trusted IdP's `sub` is logged as the consumer; non-ASCII in it (a bidi override,
    a C1 control, plain UTF-8) is written as a \\u escape: a log viewer shows what was
    sent, not what it would render."""
    monkeypatch.setattr(access_log, "_sink", None)
    stream = io.BytesIO()
    access_log.configure_access_log(stream)
    key = rsa_key("idp-1")
    idp = IdP([key])
    subjects = ["caf\u00e9", "\u202egpj.exe", "\u009b31m", "plain"]
    with serve_asgi(idp.app) as idp_server:
        idp.url = idp_server.url
        issuer = {
            "issuer": idp.url,
            "jwks_uri": f"{idp.url}/jwks",
            "audience": "tiergate",
            "algorithms": ["RS256"],
        }
        api = {
            "name": "bin",
            "upstream": {"targets": [httpbin_url]},
            "policies": {"jwt": {"issuers": [issuer]}},
        }
        config = make_config(tmp_path, [api], access_log=True)
        with serve_asgi(build_gateway(config)) as gw, httpx.Client(base_url=gw.url) as client:
            for subject in subjects:
                token = sign(key, claims(idp.url, sub=subject))
                answer = client.get(
                    "/experience/bin/v1/get", headers={"authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 200, answer.text
            lines = _lines(stream, len(subjects))
    raw = stream.getvalue()
    assert raw.isascii(), raw
    assert [line["consumer"] for line in lines] == subjects


def test_the_line_has_its_fields_in_order_and_no_private_key(tmp_path, monkeypatch):
    """A signed-in user's request: user and actor before total_ms, then the fields the
    request added (a later value wins), never a `_` key (the span of a trace)."""
    from gateway.context import EndUser, Identity, RequestContext
    from gateway.observability.tracecontext import TraceContext
    from gateway.routing import RouteTable

    config = make_config(tmp_path, [{"name": "shop", "upstream": {"targets": ["http://x:9"]}}])
    ctx = RequestContext(
        scope={},
        route=RouteTable(config.apis).routes[0],
        method="GET",
        path="/experience/shop/v1/a",
        query=b"",
        headers=[],
        request_id="r1",
        client_ip="10.0.0.1",
        started=time.perf_counter(),
        identity=Identity(
            "client", "app-1", end_user=EndUser("ann", "c-9", ("svc-b", "svc-a"), "t")
        ),
        trace=TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", None, "01"),
    )
    ctx.log.update({"operation": "getA", "_span": object(), "status": 299, "upstream_ms": 1.5})
    stream = io.BytesIO()
    monkeypatch.setattr(access_log, "_sink", None)
    access_log.configure_access_log(stream)
    access_log.log_request(ctx, 200)
    access_log.flush_access_log()
    [line] = _lines(stream, 1)
    assert list(line) == [
        "ts", "request_id", "trace_id", "api", "tier", "method", "path", "status",
        "client_ip", "consumer", "user", "actor", "total_ms", "operation", "upstream_ms",
    ]  # fmt: skip
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert (line["consumer"], line["user"], line["actor"]) == ("app-1", "ann", "svc-b svc-a")
    assert line["status"] == 299 and line["upstream_ms"] == 1.5
    assert "_span" in ctx.log  # the request's own fields are left as they were
