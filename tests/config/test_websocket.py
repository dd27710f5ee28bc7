"""`websocket:` of an API: config first."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError
from tests.support.configs import make_config, write_contract


def _api(tmp_path, websocket, targets=("http://127.0.0.1:9",), **extra):
    return {
        "name": "chat",
        "base_path": "/chat",
        "upstream": {"targets": list(targets)},
        "websocket": websocket,
        **extra,
    }


def test_true_takes_the_defaults(tmp_path):
    api = make_config(tmp_path, [_api(tmp_path, True)]).apis[0]
    assert api.websocket is not None
    assert api.websocket.max_message_bytes == 1 << 20
    assert api.websocket.operations is None


def test_false_and_absent_are_off(tmp_path):
    assert make_config(tmp_path, [_api(tmp_path, False)]).apis[0].websocket is None


@pytest.mark.parametrize(
    ("websocket", "field"),
    [
        ({"max_message_bytes": 0}, "max_message_bytes"),
        ({"max_message_bytes": 17 * 1024 * 1024}, "max_message_bytes"),
        ({"idle_timeout": 0}, "idle_timeout"),
        ({"max_connections_per_consumer": 0}, "max_connections_per_consumer"),
        ({"max_conections": 3}, "max_conections"),
    ],
)
def test_limits_are_checked(tmp_path, websocket, field):
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, [_api(tmp_path, websocket)])
    assert f"apis[0].websocket.{field}" in str(error.value)


def test_in_process_targets_are_refused(tmp_path):
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, [_api(tmp_path, True, targets=["asgi:tests.support.upstreams:echo"])])
    assert "apis[0].websocket: WebSocket APIs need http(s) targets" in str(error.value)


def test_operations_are_checked_against_the_contract(tmp_path):
    contract = write_contract(tmp_path, "chat", ["GET /rooms/{room}"], servers=[{"url": "/chat"}])
    ok = make_config(
        tmp_path, [_api(tmp_path, {"operations": ["GET /rooms/{room}"]}, contract=contract)]
    )
    assert ok.apis[0].websocket is not None
    with pytest.raises(ConfigError) as error:
        make_config(
            tmp_path, [_api(tmp_path, {"operations": ["GET /room/{room}"]}, contract=contract)]
        )
    assert "apis[0].websocket.operations[0]: 'GET /room/{room}'" in str(error.value)
