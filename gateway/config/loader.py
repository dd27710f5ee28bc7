"""Read tiergate.yaml and the environment into a validated GatewayConfig."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.config.errors import ConfigError, problems_from
from gateway.config.models import GatewayConfig

DEFAULT_CONFIG = "tiergate.yaml"
ENV_OVERRIDES = {
    "TIERGATE_REGISTRY_URL": "registry_url",
    "TIERGATE_LIMITS_STORAGE": "limits_storage",
    "TIERGATE_ADMIN_TOKEN": "admin_token",
}
PORT_OVERRIDES = {"TIERGATE_PUBLIC_PORT": "public", "TIERGATE_ADMIN_PORT": "admin"}
BAD_PORT = "{value!r} is not a TCP port (0-65535)"


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get("TIERGATE_CONFIG") or DEFAULT_CONFIG)


def read_config(path: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], Path]:
    """The file's top-level mapping and its path; ConfigError if unreadable or not YAML."""
    source = config_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(source), [("", f"cannot read the file: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise ConfigError(str(source), [("", problem)]) from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            str(source),
            [(where, f"not valid YAML ({problem}); check indentation, quotes and brackets")],
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(str(source), [("", "the top level must be a mapping of settings")])
    return raw, source


def parse_config(raw: dict[str, Any], source: Path, env: Mapping[str, str]) -> GatewayConfig:
    """Override from the environment and validate the models; ConfigError on any problem.

    The policies' own configs are resolved by `gateway.loading`, which knows the policies."""
    raw = dict(raw)
    for var, key in ENV_OVERRIDES.items():
        if env.get(var):
            raw[key] = env[var]
    problems = _override_ports(raw, env)
    if problems:
        raise ConfigError(str(source), problems)
    _default_issuer(raw)
    registry = raw.get("registry_url", GatewayConfig.model_fields["registry_url"].default)
    if isinstance(registry, str):
        raw["registry_url"] = sqlite_beside(registry, source.resolve().parent)
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(source), problems_from(exc)) from None
    config._source = source.resolve()
    return config


def _override_ports(raw: dict[str, Any], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """TIERGATE_PUBLIC_PORT / TIERGATE_ADMIN_PORT move a listener without editing the file."""
    problems = []
    for var, name in PORT_OVERRIDES.items():
        value = env.get(var)
        if not value:
            continue
        if not (value.isascii() and value.isdigit()) or int(value) > 65535:
            problems.append((var, BAD_PORT.format(value=value)))
            continue
        listeners = dict(raw.get("listeners") or {})
        listener = listeners.get(name)
        listeners[name] = {**(listener if isinstance(listener, dict) else {}), "port": int(value)}
        raw["listeners"] = listeners
    return problems


def _default_issuer(raw: dict[str, Any]) -> None:
    """`oauth.issuer` unset: the public listener's own URL, so it follows the listener."""
    oauth = raw.get("oauth")
    if oauth is not None and (not isinstance(oauth, dict) or "issuer" in oauth):
        return
    listeners = raw.get("listeners")
    public = listeners.get("public") if isinstance(listeners, dict) else None
    public = public if isinstance(public, dict) else {}
    host, port = public.get("host", "127.0.0.1"), public.get("port", 8080)
    if not isinstance(host, str) or not isinstance(port, int):
        return  # the listener's own validation reports it
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    raw["oauth"] = {**(oauth or {}), "issuer": f"http://{host}:{port}"}


def sqlite_beside(url: str, base: Path) -> str:
    """A SQLite URL with a relative file path, made absolute against `base` (the config
    file's folder, as for contracts); any other URL as it is."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        return url
    if not rest or rest.startswith(("/", ":memory:", "file:")):
        return url  # absolute, in memory, or a URI filename
    return f"{scheme}:///{base / rest}"


def contract_path(config: GatewayConfig, contract: str) -> Path:
    """An API's contract file, relative to the config file (or the working directory)."""
    base = config.source.parent if config.source else Path.cwd()
    return (base / contract).resolve()


def contract_file_problems(config: GatewayConfig, base: Path) -> list[tuple[str, str]]:
    problems = []
    for index, api in enumerate(config.apis):
        if api.contract is not None and not (base / api.contract).is_file():
            resolved = (base / api.contract).resolve()
            problems.append(
                (f"apis[{index}].contract", f"file {api.contract!r} not found ({resolved})")
            )
    return problems
