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


def test_sign_in_is_off_unless_configured(tmp_path):
    assert make_config(tmp_path, [api()]).catalogue.sign_in is None


def test_sign_in_names_only_configured_apis_and_plans(tmp_path):
    sign_in = {"partners": {"carol": "acme"}, "key_apis": ["shop", "nope"], "key_plan": "gold"}
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, [api()], catalogue={"sign_in": sign_in})
    message = str(error.value)
    assert "catalogue.sign_in.key_apis[1]: no API named 'nope'" in message
    assert "catalogue.sign_in.key_plan: no plan named 'gold'" in message
    assert "tiergate.yaml" in message  # names the file


def test_partners_need_key_apis(tmp_path):
    with pytest.raises(ConfigError, match=r"catalogue.sign_in.key_apis: partners are listed"):
        make_config(tmp_path, [api()], catalogue={"sign_in": {"partners": {"carol": "acme"}}})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("staff", ["bad name"]),
        ("partners", {"carol": "Not A Consumer"}),
        ("base_url", "http://example.test/catalogue"),
        ("base_url", "javascript:alert(1)"),
        ("session_ttl", 10),
    ],
)
def test_sign_in_fields_are_checked(tmp_path, field, value):
    with pytest.raises(ConfigError, match=rf"catalogue.sign_in.{field}"):
        make_config(tmp_path, [api()], catalogue={"sign_in": {field: value}})
