"""`tiergate init --api NAME --tier TIER --upstream URL [--contract FILE_OR_URL]`: put
your own API behind Tiergate.

In a folder without a config it writes a working `tiergate.yaml` (listeners, SQLite
registry, in-memory rate limits, one plan) with the API; run again with another
`--api`, it adds that API. The contract is copied (or fetched: from `--contract URL`,
else from the upstream's `/openapi.json`) into `openapi/` beside the config, and the
result is validated like `tiergate check` before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from gateway.config import ConfigError
from gateway.config.errors import problems_from
from gateway.config.loader import config_path, validate_config
from gateway.config.models import ApiConfig

CONTRACTS_DIR = "openapi"
FETCH_TIMEOUT = 10.0
TIERS = ("experience", "process", "system")
SUFFIXES = (".yaml", ".yml", ".json")

HEADER = """\
# Written by `tiergate init`; edit freely (docs/gateway.md is the reference).
# `tiergate check` validates it, `tiergate up` serves it: public :8080, admin :8081
# (TIERGATE_PUBLIC_PORT / TIERGATE_ADMIN_PORT or `up --port/--admin-port` move them).
listeners:
  public: {host: 127.0.0.1, port: 8080}
  admin: {host: 127.0.0.1, port: 8081}
registry_url: sqlite:///var/registry.db  # clients, keys, signing keys
limits_storage: memory://                # redis://host:6379/0 for several gateways
plans:
  free:
    limits: ["60/minute", "1000/day"]

# Every API: a token of the built-in authorization server (`jwt`; the contract's
# `security` says which scopes each operation needs), the tier rule (`tier-guard`) and
# the plan's rate limits (`rate-limit`).
apis:
"""

ALREADY = "API {name!r} is already in {config}; choose another --api or edit the file"
NOT_OPENAPI = "{source} is not an OpenAPI 3 document (no 'openapi: 3.x' field)"
CANNOT_FETCH = "cannot fetch the contract from {url}: {reason}"
CANNOT_READ = "cannot read the contract {path}: {reason}"
NOT_EMPTY = (
    "{config} is not a config this command can add to ({reason}); fix it or choose another --config"
)


class InitError(Exception):
    """Why nothing was written."""


def register(sub: argparse._SubParsersAction) -> None:
    init = sub.add_parser(
        "init",
        help="put your own API behind Tiergate: write (or add to) tiergate.yaml",
        description="Write a working tiergate.yaml with your API, or add the API to it.",
    )
    init.add_argument("--api", required=True, help="the API's name (lower case, e.g. shop)")
    init.add_argument("--tier", required=True, choices=TIERS, help="the API's tier")
    init.add_argument("--upstream", required=True, help="where the API runs: http://host:port")
    init.add_argument(
        "--contract",
        help="its OpenAPI document: a file or an http(s) URL (default: UPSTREAM/openapi.json)",
    )
    init.add_argument("--json", action="store_true", help="print what was written as JSON")
    init.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    config = config_path(args.config)
    try:
        written = init_api(config, args.api, args.tier, args.upstream, args.contract)
    except InitError as error:  # a ConfigError is reported by the CLI (exit status 2)
        print(f"tiergate: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(written, indent=2))
        return 0
    print(
        f"{written['action']} {written['config']}: API {args.api!r} ({args.tier}) at "
        f"{written['path']}, forwarded to {args.upstream}; contract {written['contract']}\n"
        f"next: tiergate check, then tiergate up; a client for it: "
        f"tiergate clients create my-app --scopes '...'"
    )
    return 0


def init_api(
    config: Path, name: str, tier: str, upstream: str, contract: str | None = None
) -> dict[str, Any]:
    """Add the API to `config` (created when missing); returns what was written."""
    text = _existing(config)
    raw = _parse(config, text) if text is not None else {}
    if any(isinstance(api, dict) and api.get("name") == name for api in raw.get("apis") or []):
        raise InitError(ALREADY.format(name=name, config=config))
    entry: dict[str, Any] = {
        "name": name,
        "tier": tier,
        "contract": "",  # once it is read: its suffix follows the source's
        "upstream": {"targets": [upstream]},
        "policies": {"jwt": {}, "tier-guard": {}, "rate-limit": {"default_plan": "free"}},
    }
    try:
        base_path = ApiConfig.model_validate(entry).path
    except ValidationError as exc:
        options = {"name": "--api", "tier": "--tier"}
        problems = [
            (options.get(where.split(".")[0].split("[")[0], "--upstream"), problem)
            for where, problem in problems_from(exc)
        ]
        raise ConfigError(str(config), problems) from None
    document, suffix = _read_contract(contract or upstream.rstrip("/") + "/openapi.json")
    target = config.parent / CONTRACTS_DIR / f"{name}{suffix}"
    entry["contract"] = relative = target.relative_to(config.parent).as_posix()
    new_text = (text if text is not None else HEADER) + _api_block(entry)
    try:
        new_raw = yaml.safe_load(new_text)
    except yaml.YAMLError:
        new_raw = None
    before = raw.get("apis") or []
    appended = isinstance(new_raw, dict) and new_raw.get("apis") == [*before, entry]
    if not appended:
        # The file does not end in its `apis:` list: rewrite it from the parsed mapping.
        new_raw = {**raw, "apis": [*(raw.get("apis") or []), entry]}
        new_text = yaml.safe_dump(new_raw, sort_keys=False)
    if not new_raw.get("plans"):
        raise InitError(
            NOT_EMPTY.format(config=config, reason="it has no plans; add one named 'free'")
        )
    created = not target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_as_gateway_contract(document, suffix, tier, base_path), encoding="utf-8")
    try:
        checked = validate_config(new_raw, config, {})  # as `check` will, before writing
    except ConfigError:
        if created:
            target.unlink()
        raise
    config.write_text(new_text, encoding="utf-8")
    return {
        "action": "wrote" if text is None else "updated",
        "config": str(config),
        "api": name,
        "tier": tier,
        "path": checked.api(name).path,
        "upstream": upstream,
        "contract": relative,
    }


def _existing(config: Path) -> str | None:
    try:
        return config.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InitError(NOT_EMPTY.format(config=config, reason=exc)) from None


def _parse(config: Path, text: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise InitError(NOT_EMPTY.format(config=config, reason="not valid YAML")) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("apis", []), list):
        raise InitError(NOT_EMPTY.format(config=config, reason="no list of apis"))
    return raw


def _api_block(entry: dict[str, Any]) -> str:
    dumped = yaml.safe_dump([entry], sort_keys=False, default_flow_style=None, width=100)
    return "".join(f"  {line}\n" for line in dumped.splitlines())


def _as_gateway_contract(document: dict[str, Any], suffix: str, tier: str, base: str) -> str:
    """The contract as `tiergate check` wants it: its tier (`x-tier`) and the API's base
    path first in `servers`; everything else as the source has it."""
    servers = [s for s in document.get("servers") or [] if isinstance(s, dict)]
    if base not in [str(s.get("url", "")).rstrip("/") for s in servers]:
        servers.insert(0, {"url": base, "description": "through Tiergate"})
    document = {**document, "x-tier": tier, "servers": servers}
    if suffix == ".json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _read_contract(source: str) -> tuple[dict[str, Any], str]:
    """The contract as parsed and the suffix to store it under, once it is OpenAPI 3."""
    if urlsplit(source).scheme in ("http", "https"):
        import httpx

        try:
            response = httpx.get(source, timeout=FETCH_TIMEOUT, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise InitError(CANNOT_FETCH.format(url=source, reason=exc)) from None
        if response.status_code != 200:
            reason = f"status {response.status_code}"
            raise InitError(CANNOT_FETCH.format(url=source, reason=reason))
        body = response.content
        suffix = Path(urlsplit(source).path).suffix.lower()
    else:
        path = Path(source)
        try:
            body = path.read_bytes()
        except OSError as exc:
            failure = exc.strerror or str(exc)
            raise InitError(CANNOT_READ.format(path=path.resolve(), reason=failure)) from None
        suffix = path.suffix.lower()
    try:
        document = yaml.safe_load(body)  # JSON is YAML
    except yaml.YAMLError:
        document = None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
        raise InitError(NOT_OPENAPI.format(source=source))
    if suffix not in SUFFIXES:
        suffix = ".json" if body.lstrip().startswith(b"{") else ".yaml"
    return document, ".yaml" if suffix == ".yml" else suffix
