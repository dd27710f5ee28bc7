import pytest

from gateway.config import ConfigError
from tests.support.configs import make_config

API = {"name": "bin", "upstream": {"targets": ["http://127.0.0.1:9"]}}


def test_otlp_needs_an_endpoint(tmp_path):
    with pytest.raises(ConfigError, match=r"observability.tracing: .*otlp_endpoint"):
        make_config(tmp_path, [dict(API)], observability={"tracing": {"exporter": "otlp"}})


def test_unknown_exporter_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"observability.tracing.exporter"):
        make_config(tmp_path, [dict(API)], observability={"tracing": {"exporter": "jaeger"}})


def test_defaults_export_nothing(tmp_path):
    config = make_config(tmp_path, [dict(API)])
    assert config.observability.tracing.exporter == "none"
    assert config.observability.metrics.consumer_label is False
