"""`tiergate clients ...`, `tiergate users ...`, `tiergate keys ...`,
`tiergate signing-keys rotate`: work directly on the registry named by the config (or
TIERGATE_REGISTRY_URL)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from gateway.config.loader import config_path
from gateway.config.models import GatewayConfig
from gateway.loading import load_config, validate_config
from gateway.oauth.component import service_scopes
from gateway.oauth.keys import rotate_signing_key
from gateway.oauth.service_secrets import remember_secret
from gateway.registry import audit
from gateway.registry.engine import redacted
from gateway.registry.plans import unknown_apis, unknown_operations, unknown_plan
from gateway.registry.records import ApiKeyRecord
from gateway.registry.store import Registry, RegistryError

ONCE = "Shown once: store it now; Tiergate keeps only a hash."


def register(sub: argparse._SubParsersAction) -> None:
    clients = sub.add_parser("clients", help="OAuth2 clients").add_subparsers(
        dest="action", required=True
    )
    create = _with_config(clients.add_parser("create", help="register a client; prints its secret"))
    create.add_argument("name")
    create.add_argument("--scopes", default="", help='space-separated, e.g. "orders:read"')
    create.add_argument("--consumer", help="consumer it acts for (default: NAME)")
    create.add_argument(
        "--service",
        action="store_true",
        help="NAME is an API of the config run as a separate service: create (or re-key) its "
        "service client svc-NAME, with the tier and scopes embedded mode gives it",
    )
    create.add_argument(
        "--public",
        action="store_true",
        help="an app that cannot keep a secret (mobile, single-page): no secret, "
        "authorization_code with PKCE and refresh_token only; needs --redirect-uri",
    )
    create.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="where the sign-in page may send the user back (exact match); repeatable",
    )
    create.add_argument("--json", action="store_true", help="machine-readable output")
    create.set_defaults(handler=_run(_create_client))
    listing = _with_config(clients.add_parser("list", help="list clients (never secrets)"))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_run(_list_clients))
    rotate = _with_config(
        clients.add_parser("rotate", help="give a client a new secret; the old one overlaps")
    )
    rotate.add_argument("client_id")
    rotate.add_argument(
        "--overlap", type=int, default=3600, help="seconds the old secret stays valid"
    )
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=_run(_rotate_client))

    keys = sub.add_parser("keys", help="partner API keys").add_subparsers(
        dest="action", required=True
    )
    create = _with_config(keys.add_parser("create", help="issue a key; prints it once"))
    create.add_argument("--consumer", required=True)
    create.add_argument("--plan", required=True)
    create.add_argument("--apis", required=True, help="comma-separated API names")
    create.add_argument("--expires-in", type=int, help="seconds until the key expires")
    create.add_argument(
        "--scopes", default="", help="space-separated scopes granted, checked like a token's"
    )
    create.add_argument(
        "--operations",
        help="comma-separated operations (operationId or 'METHOD /template') the key is "
        "limited to; default: every operation of its APIs that accepts keys",
    )
    create.add_argument(
        "--cert",
        metavar="FILE",
        help="register this PEM client certificate (mTLS) instead of issuing a key: the "
        "mtls policy maps it to the consumer by its SHA-256 fingerprint",
    )
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=_run(_create_key))
    revoke = _with_config(keys.add_parser("revoke", help="revoke a key by id"))
    revoke.add_argument("key_id")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(handler=_run(_revoke_key))
    rotate = _with_config(keys.add_parser("rotate", help="replace a key; the old one overlaps"))
    rotate.add_argument("key_id")
    rotate.add_argument("--overlap", type=int, default=3600, help="seconds the old key lives")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=_run(_rotate_key))
    listing = _with_config(keys.add_parser("list", help="list keys (prefix only)"))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_run(_list_keys))

    trail = _with_config(
        sub.add_parser("audit", help="who changed what, newest first (the audit trail)")
    )
    trail.add_argument("--actor", help="e.g. admin-token:ops or cli:alice")
    trail.add_argument("--action", help="entries whose action starts with this")
    trail.add_argument("--target", help="the id or name changed")
    trail.add_argument("--since", type=float, help="POSIX seconds")
    trail.add_argument("--limit", type=int, default=50, help="at most this many (1-500)")
    trail.add_argument("--json", action="store_true")
    trail.set_defaults(handler=_run(_audit_list))

    users = sub.add_parser("users", help="end users who sign in at /oauth/authorize")
    actions = users.add_subparsers(dest="action", required=True)
    create = _with_config(actions.add_parser("create", help="add a user linked to a customer"))
    create.add_argument("username")
    create.add_argument("--customer", required=True, help="the customer account, e.g. cus_0001")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (otherwise it is prompted for)",
    )
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=_run(_create_user))
    listing = _with_config(actions.add_parser("list", help="list users (never passwords)"))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_run(_list_users))
    disable = _with_config(
        actions.add_parser("disable", help="refuse the user's sign-ins and refresh tokens")
    )
    disable.add_argument("username")
    disable.add_argument("--json", action="store_true")
    disable.set_defaults(handler=_run(_disable_user))

    signing = sub.add_parser("signing-keys", help="token signing keys").add_subparsers(
        dest="action", required=True
    )
    rotate = _with_config(signing.add_parser("rotate", help="start signing with a new key"))
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(handler=_run(_rotate_signing_key))


def _with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", help="config file (default: $TIERGATE_CONFIG or tiergate.yaml)")
    return parser


def cli_config(path: str | None) -> GatewayConfig:
    """The config; without a file (and none asked for) the defaults plus the environment."""
    if path is None and not os.environ.get("TIERGATE_CONFIG") and not config_path().exists():
        return validate_config({}, Path("tiergate.yaml"), os.environ)
    return load_config(path)


Action = Callable[[Registry, GatewayConfig, argparse.Namespace], Awaitable[int]]


def _run(action: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        config = cli_config(args.config)

        async def main() -> int:
            registry = Registry.from_url(config.registry_url)
            try:
                await registry.start()
                code = await action(registry, config, args)
                if code == 0 and (args.command, getattr(args, "action", None)) in AUDITED:
                    await _audit(registry, args)
                return code
            finally:
                await registry.aclose()

        try:
            return asyncio.run(main())
        except RegistryError as error:
            print(f"tiergate: {error}", file=sys.stderr)
            return 1
        except (OSError, SQLAlchemyError) as error:
            where = redacted(config.registry_url)
            print(
                f"tiergate: cannot use the registry at {where}: {type(error).__name__}",
                file=sys.stderr,
            )
            return 1

    return handler


# Commands that change the registry: each success is appended to the audit trail.
AUDITED = {
    ("clients", "create"),
    ("clients", "rotate"),
    ("keys", "create"),
    ("keys", "revoke"),
    ("keys", "rotate"),
    ("signing-keys", "rotate"),
    ("users", "create"),
    ("users", "disable"),
}


async def _audit_list(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= audit.MAX_PAGE:
        return _fail(f"--limit must be between 1 and {audit.MAX_PAGE}")
    found = await audit.entries(
        registry,
        actor=args.actor,
        action=args.action,
        target=args.target,
        since=args.since,
        limit=args.limit,
    )
    lines = [
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(e.at))} {e.actor:24} "
        f"{e.action} {e.target or ''}".rstrip()
        for e in found
    ]
    _emit(args, {"items": [e.public() for e in found]}, lines or ["(no entries)"])
    return 0


def cli_actor() -> str:
    """Who the audit trail names for a change made with the CLI."""
    import getpass

    return f"cli:{getpass.getuser()}"


async def _audit(registry: Registry, args: argparse.Namespace) -> None:
    target = next(
        (
            str(getattr(args, name))
            for name in ("client_id", "key_id", "name", "consumer")
            if getattr(args, name, None)
        ),
        None,
    )
    action = f"{args.command} {args.action}"
    after = getattr(args, "emitted", None)
    await audit.append(registry, cli_actor(), action, target, None, after)


def _fail(message: str) -> int:
    print(f"tiergate: {message}", file=sys.stderr)
    return 1


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a plain-text table: a header row, columns as wide as their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *rows)
    ]


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    args.emitted = data  # what the audit trail records (secrets redacted there)
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(lines))


async def _create_client(
    registry: Registry, config: GatewayConfig, args: argparse.Namespace
) -> int:
    if args.public or args.redirect_uri:
        return await _create_public_client(registry, args)
    if args.service:
        api = next((a for a in config.apis if a.name == args.name), None)
        if api is None:
            return _fail(f"no API named {args.name!r} in the config")
        scopes = service_scopes(config, api) | set(args.scopes.split())
        client, secret = await registry.provision_service_client(api.name, api.tier, scopes)
    else:
        client, secret = await registry.create_client(
            args.name, args.scopes.split(), consumer=args.consumer
        )
    data = {**client.public(), "client_secret": secret}
    _emit(
        args,
        data,
        [
            f"client_id:     {client.client_id}",
            f"client_secret: {secret}",
            f"scopes:        {' '.join(sorted(client.scopes)) or '(none)'}",
            ONCE,
        ],
    )
    return 0


async def _rotate_client(
    registry: Registry, config: GatewayConfig, args: argparse.Namespace
) -> int:
    if args.overlap < 0:
        return _fail("--overlap must be 0 or more seconds")
    client, secret = await registry.rotate_client_secret(args.client_id, args.overlap)
    embedded = remember_secret(config.registry_url, client.client_id, secret)
    data = {**client.public(), "client_secret": secret, "overlap_seconds": args.overlap}
    lines = [
        f"client_id:     {client.client_id}",
        f"client_secret: {secret}",
        ONCE,
        f"The previous secret stays valid for {args.overlap} s.",
    ]
    if embedded:
        lines.append("The gateway's embedded service uses it after its next reload or restart.")
    _emit(args, data, lines)
    return 0


async def _create_public_client(registry: Registry, args: argparse.Namespace) -> int:
    if not args.public:
        return _fail("--redirect-uri is for public clients: add --public")
    if args.service:
        return _fail("--public and --service exclude each other")
    if not args.redirect_uri:
        return _fail("a public client needs at least one --redirect-uri")
    problems = [why for uri in args.redirect_uri if (why := bad_redirect_uri(uri))]
    if problems:
        return _fail(problems[0])
    client = await registry.create_public_client(
        args.name, args.redirect_uri, args.scopes.split(), consumer=args.consumer
    )
    _emit(
        args,
        client.public(),
        [
            f"client_id:     {client.client_id} (public: no secret; PKCE S256 required)",
            f"redirect_uris: {' '.join(client.redirect_uris)}",
            f"scopes:        {' '.join(sorted(client.scopes)) or '(none)'}",
        ],
    )
    return 0


async def _list_clients(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    clients = [c.public() for c in await registry.list_clients()]
    rows = [
        [
            c["client_id"],
            c["kind"],
            c["consumer"],
            "revoked" if c["revoked_at"] else "active",
            " ".join(c["scopes"]),
        ]
        for c in clients
    ]
    header = ["CLIENT_ID", "KIND", "CONSUMER", "STATE", "SCOPES"]
    _emit(args, {"items": clients}, table(header, rows) if rows else ["(no clients)"])
    return 0


async def _create_key(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    apis = [a.strip() for a in args.apis.split(",") if a.strip()]
    if not apis:
        return _fail("--apis needs at least one API name")
    operations = None
    if args.operations is not None:
        operations = [o.strip() for o in args.operations.split(",") if o.strip()]
    why = (
        unknown_plan(config, args.plan)
        or unknown_apis(config, apis)
        or (unknown_operations(config, apis, operations) if operations else None)
    )
    if why:
        return _fail(why)
    fingerprint = None
    if args.cert is not None:
        fingerprint, why = certificate_fingerprint(args.cert)
        if fingerprint is None:
            return _fail(why)
    record, plaintext = await registry.create_api_key(
        args.consumer,
        args.plan,
        apis,
        args.expires_in,
        args.scopes.split(),
        operations,
        certificate_sha256=fingerprint,
    )
    if fingerprint is not None:
        lines = [f"id:   {record.id}", f"certificate sha256: {fingerprint}"]
        _emit(args, {**record.public(time.time()), "certificate_sha256": fingerprint}, lines)
        return 0
    return _emit_key(args, record, plaintext)


def _shown(prefix: str) -> str:
    """How a credential is listed: a key by its prefix, a certificate by its fingerprint."""
    if prefix.startswith("x509:"):
        return f"cert sha256:{prefix[5:]}…"
    return f"tg_{prefix}_…"


def certificate_fingerprint(path: str) -> tuple[str | None, str]:
    """(SHA-256 hex of the PEM certificate's DER, "") or (None, why it cannot be read)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        certificate = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except OSError as error:
        return None, f"--cert {path}: cannot read the file: {error.strerror}"
    except ValueError:
        return None, f"--cert {path}: not a PEM certificate"
    return certificate.fingerprint(hashes.SHA256()).hex(), ""


async def _revoke_key(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    record = await registry.revoke_api_key(args.key_id)
    line = f"revoked {record.id} (prefix {record.prefix}); every node refuses it within seconds"
    _emit(args, record.public(time.time()), [line])
    return 0


async def _rotate_key(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    record, plaintext = await registry.rotate_api_key(args.key_id, args.overlap)
    note = f"the old key {args.key_id} stays valid for {args.overlap} s"
    return _emit_key(args, record, plaintext, note)


def _emit_key(args: argparse.Namespace, record: ApiKeyRecord, plaintext: str, *notes: str) -> int:
    lines = [f"id:   {record.id}", f"key:  {plaintext}", *notes, ONCE]
    _emit(args, {**record.public(time.time()), "key": plaintext}, lines)
    return 0


async def _list_keys(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    now = time.time()
    keys = [k.public(now) for k in await registry.list_api_keys()]
    rows = [
        [k["id"], _shown(k["prefix"]), k["consumer"], k["plan"], k["state"], ",".join(k["apis"])]
        for k in keys
    ]
    header = ["ID", "KEY", "CONSUMER", "PLAN", "STATE", "APIS"]
    _emit(args, {"items": keys}, table(header, rows) if rows else ["(no keys)"])
    return 0


async def _rotate_signing_key(
    registry: Registry, config: GatewayConfig, args: argparse.Namespace
) -> int:
    key = await rotate_signing_key(registry, config.oauth)
    delay = config.oauth.key_activation_delay
    line = (
        f"new signing key {key.kid} ({key.alg}) signs in {delay:g} s; previous keys stay in "
        f"the JWKS until their tokens expire"
    )
    _emit(args, {"kid": key.kid, "alg": key.alg, "signs_in": delay}, [line])
    return 0


def bad_redirect_uri(uri: str) -> str | None:
    """Why `uri` cannot be a registered redirect URI (RFC 6749 §3.1.2, RFC 8252 §7), or None."""
    parts = urlsplit(uri)
    if len(uri) > 512 or any(c.isspace() or ord(c) < 0x21 for c in uri):
        return f"redirect URI {uri[:80]!r} is too long or holds spaces or control characters"
    if not parts.scheme or parts.fragment or "#" in uri:
        return f"redirect URI {uri!r} must be absolute and carry no #fragment"
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return f"redirect URI {uri!r}: plain http is only for loopback; use https"
    if parts.scheme in ("http", "https") and not parts.hostname:
        return f"redirect URI {uri!r} has no host"
    return None


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise RegistryError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise RegistryError("the passwords differ")
    return first


async def _create_user(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    password = _read_password(args)
    user = await registry.create_user(args.username, password, args.customer)
    _emit(
        args,
        user.public(),
        [f"user {user.username} created for customer {user.customer_id}; it can sign in now"],
    )
    return 0


async def _list_users(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    now = time.time()
    users = await registry.list_users()
    lines = [
        f"{u.username:24} {u.customer_id:12} "
        f"{'disabled' if u.disabled else 'locked' if (u.locked_until or 0) > now else 'active'}"
        for u in users
    ]
    _emit(args, {"items": [u.public() for u in users]}, lines or ["(no users)"])
    return 0


async def _disable_user(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    user = await registry.disable_user(args.username)
    _emit(
        args,
        user.public(),
        [f"user {user.username} disabled; their refresh tokens no longer work"],
    )
    return 0
