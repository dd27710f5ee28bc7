import pytest

from gateway.config import ConfigError
from tests.support.configs import make_config


def api(**extra):
    return {"name": "shop", "upstream": {"targets": ["http://127.0.0.1:9"]}, **extra}


def test_deprecated_api_needs_a_date(tmp_path):
    with pytest.raises(ConfigError, match=r"apis\[0\].*deprecated_since"):
        make_config(tmp_path, [api(lifecycle="deprecated")])


def test_sunset_not_before_deprecation(tmp_path):
    with pytest.raises(ConfigError, match="sunset must not be earlier"):
        make_config(
            tmp_path,
            [api(lifecycle="deprecated", deprecated_since="2026-05-01", sunset="2026-01-01")],
        )


def test_unknown_catalogue_setting_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"catalogue.colour: unknown key"):
        make_config(tmp_path, [api()], catalogue={"colour": "red"})


def test_deprecated_api_gets_the_deprecation_policy(tmp_path):
    config = make_config(tmp_path, [api(lifecycle="deprecated", deprecated_since="2026-05-01")])
    assert "deprecation" in config.apis[0].policy_configs
    assert "deprecation" not in make_config(tmp_path, [api()]).apis[0].policy_configs
