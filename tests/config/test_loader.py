"""The loader names the file, the field path and the fix for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError
from gateway.loading import load_config
from tests.support.configs import MINIMAL_CONTRACT


def write(tmp_path: Path, config: dict | str) -> Path:
    (tmp_path / "contract.yaml").write_text(MINIMAL_CONTRACT)
    path = tmp_path / "tiergate.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def api(name: str = "shop", **fields: object) -> dict:
    base = {
        "name": name,
        "tier": "experience",
        "contract": "contract.yaml",
        "upstream": {"targets": ["http://127.0.0.1:9000"]},
    }
    return {**base, **fields}


def problems(tmp_path: Path, config: dict | str, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, config), env=env or {})
    text = str(caught.value)
    assert text.startswith(str(tmp_path / "tiergate.yaml")), text
    return text.splitlines()


def test_valid_config_loads_with_defaults(tmp_path):
    config = load_config(write(tmp_path, {"apis": [api()]}), env={})
    shop = config.api("shop")
    assert shop.path == "/experience/shop/v1"
    assert shop.upstream.retries == 1
    assert shop.upstream.timeouts.connect == 2.0
    assert config.source == (tmp_path / "tiergate.yaml").resolve()


def test_unknown_key_names_the_path(tmp_path):
    config = {"apis": [api(upstream={"targets": ["http://127.0.0.1:9000"], "retry": 2})]}
    [line] = problems(tmp_path, config)
    assert "apis[0].upstream.retry: unknown key; remove it or check its spelling" in line


def test_bad_target_url(tmp_path):
    [line] = problems(tmp_path, {"apis": [api(upstream={"targets": ["ftp://x"]})]})
    assert "apis[0].upstream.targets:" in line
    assert "use http://host:port[/prefix] or asgi:module:attribute" in line


def test_duplicate_base_path_names_the_second_api(tmp_path):
    config = {"apis": [api("a", base_path="/shop"), api("b", base_path="/shop")]}
    [line] = problems(tmp_path, config)
    assert "apis[1].base_path: APIs 'a' and 'b' share base path '/shop'" in line
    assert "give one a different base_path" in line


def test_missing_contract_file(tmp_path):
    [line] = problems(tmp_path, {"apis": [api(contract="missing.yaml")]})
    assert "apis[0].contract: file 'missing.yaml' not found" in line
    assert f"({tmp_path / 'missing.yaml'})" in line  # the path it looked at, resolved


def test_contracts_are_found_beside_the_config_whatever_the_cwd(tmp_path, monkeypatch):
    write(tmp_path, {"apis": [api()]})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_config(Path("..") / "tiergate.yaml", env={}).api("shop").contract == "contract.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, {"apis": [api(contract="gone.yaml")]}), env={})
    assert f"({tmp_path / 'gone.yaml'})" in str(caught.value)


def test_port_variables_move_the_listeners_and_the_issuer_follows(tmp_path):
    path = write(tmp_path, {"listeners": {"public": {"host": "127.0.0.1", "port": 8080}}})
    config = load_config(path, env={"TIERGATE_PUBLIC_PORT": "9090", "TIERGATE_ADMIN_PORT": "0"})
    assert (config.listeners.public.port, config.listeners.admin.port) == (9090, 0)
    assert config.listeners.public.host == "127.0.0.1"  # the rest of the listener stays
    assert config.oauth.issuer == "http://127.0.0.1:9090"
    assert load_config(path, env={}).oauth.issuer == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("listener", "issuer"),
    [
        ({"host": "10.0.0.5", "port": 9000}, "http://10.0.0.5:9000"),
        ({"host": "0.0.0.0", "port": 80}, "http://127.0.0.1:80"),
        ({"host": "::1", "port": 8443}, "http://[::1]:8443"),
    ],
)
def test_issuer_defaults_to_the_public_listener(tmp_path, listener, issuer):
    path = write(tmp_path, {"listeners": {"public": listener}})
    assert load_config(path, env={}).oauth.issuer == issuer


def test_an_explicit_issuer_is_kept(tmp_path):
    path = write(tmp_path, {"oauth": {"issuer": "https://api.example.com"}})
    assert load_config(path, env={"TIERGATE_PUBLIC_PORT": "1"}).oauth.issuer == (
        "https://api.example.com"
    )


@pytest.mark.parametrize("value", ["http", "-1", "65536", "80 ", "8\u00b2", "\u0668\u0660"])
def test_a_bad_port_variable_names_the_variable(tmp_path, value):
    [line] = problems(tmp_path, {}, env={"TIERGATE_PUBLIC_PORT": value})
    assert f"TIERGATE_PUBLIC_PORT: {value!r} is not a TCP port (0-65535)" in line


def test_unknown_policy_lists_known_ones(tmp_path):
    [line] = problems(tmp_path, {"apis": [api(policies={"no-such-policy": {}})]})
    assert "apis[0].policies.no-such-policy: unknown policy 'no-such-policy'" in line
    assert "known policies:" in line


def test_unknown_default_policy(tmp_path):
    lines = problems(tmp_path, {"defaults": {"nope": {}}, "apis": [api()]})
    assert any("defaults.nope: unknown policy 'nope'" in line for line in lines)


def test_bad_yaml_names_line_and_column(tmp_path):
    [line] = problems(tmp_path, "apis: [\n  {name: x\n")
    assert "line 3, column 1: not valid YAML" in line


def test_top_level_must_be_a_mapping(tmp_path):
    [line] = problems(tmp_path, "- a\n- b\n")
    assert "the top level must be a mapping" in line


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the file"):
        load_config(tmp_path / "nope.yaml", env={})


def test_binary_file(tmp_path):
    path = tmp_path / "tiergate.yaml"
    path.write_bytes(b"apis: []\n\xff\xfe")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 9\); save the file as UTF-8"):
        load_config(path, env={})


def test_depends_on_must_go_one_tier_down(tmp_path):
    config = {
        "apis": [
            api("sys", tier="system"),
            api("web", depends_on=["sys"]),
        ]
    }
    [line] = problems(tmp_path, config)
    assert "apis[1].depends_on: experience API 'web' may not depend on system API 'sys'" in line


def test_env_overrides(tmp_path):
    path = write(tmp_path, {"apis": [api()]})
    env = {
        "TIERGATE_REGISTRY_URL": "postgresql://db/tiergate",
        "TIERGATE_LIMITS_STORAGE": "redis://127.0.0.1:6379/3",
        "TIERGATE_ADMIN_TOKEN": "s3cret",
    }
    config = load_config(path, env=env)
    assert config.registry_url == "postgresql://db/tiergate"
    assert config.limits_storage == "redis://127.0.0.1:6379/3"
    assert config.admin_token == "s3cret"
    assert load_config(path, env={}).admin_token is None


def test_tiergate_config_env_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, {"apis": [api("from-env")]})
    monkeypatch.setenv("TIERGATE_CONFIG", str(path))
    assert load_config().api("from-env").name == "from-env"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"workers": 0}, "workers"),
        ({"workers": "many"}, "workers"),
        ({"rate_limiting": {"sync": "soon"}}, "rate_limiting.sync"),
        ({"rate_limiting": {"sync": "5ms"}}, "rate_limiting.sync"),
        ({"rate_limiting": {"per_worker": "perhaps"}}, "rate_limiting.per_worker"),
    ],
)
def test_scaling_settings_are_checked_at_load(tmp_path, fields, where):
    found = problems(tmp_path, {"apis": [api()], **fields})
    assert any(where in line for line in found), found


def test_scaling_settings_default_to_one_exact_process(tmp_path):
    config = load_config(write(tmp_path, {"apis": [api()], "workers": 3}), env={})
    assert config.workers == 3
    assert config.rate_limiting.sync is None
    assert config.rate_limiting.per_worker is False
    default = load_config(write(tmp_path, {"apis": [api()]}), env={})
    assert default.workers == 1


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "sqlite:///{dir}/var/registry.db"),  # the default
        ("sqlite:///data/r.db", "sqlite:///{dir}/data/r.db"),
        ("sqlite+aiosqlite:///r.db", "sqlite+aiosqlite:///{dir}/r.db"),
        ("sqlite:////srv/tiergate/r.db", "sqlite:////srv/tiergate/r.db"),  # absolute
        ("sqlite://", "sqlite://"),  # in memory
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://u@127.0.0.1/test", "postgresql://u@127.0.0.1/test"),
    ],
)
def test_a_relative_sqlite_registry_is_beside_the_config_file(
    tmp_path, monkeypatch, given, expected
):
    """Like the contracts and var/admin-token: the same database whatever folder a command
    runs from (relative to the working directory, `up` from / would write /var/registry.db)."""
    monkeypatch.chdir("/")
    raw: dict = {"apis": [api()]}
    if given is not None:
        raw["registry_url"] = given
    config = load_config(write(tmp_path, raw), env={})
    assert config.registry_url == expected.format(dir=tmp_path.resolve())
    from_env = load_config(
        tmp_path / "tiergate.yaml", env={"TIERGATE_REGISTRY_URL": "sqlite:///e.db"}
    )
    assert from_env.registry_url == f"sqlite:///{tmp_path.resolve()}/e.db"
