"""`tiergate reload`: ask a running gateway to reload its config (POST /admin/config/reload).

Exit 0 when the new config is serving, 1 when the gateway refused it (the problems are
printed; it still serves the previous config) or could not be reached."""

from __future__ import annotations

import argparse
import json
import sys

import httpx

from gateway.admin.token import admin_call

RELOAD_FAILED = "tiergate: cannot reload through {url}: {reason}"


def register(sub: argparse._SubParsersAction) -> None:
    reload = sub.add_parser("reload", help="reload the config of a running gateway")
    reload.add_argument("--config", help="config file (default: $TIERGATE_CONFIG or tiergate.yaml)")
    reload.add_argument("--admin-url", help="admin listener URL (default: from the config)")
    reload.add_argument("--json", action="store_true", help="print the JSON answer")
    reload.set_defaults(handler=cmd_reload)


def cmd_reload(args: argparse.Namespace) -> int:
    target = admin_call(args.config, args.admin_url, "/admin/config/reload")
    if target is None:
        return 2
    url, token = target
    try:
        response = httpx.post(url, headers={"authorization": f"Bearer {token}"}, timeout=60)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        print(RELOAD_FAILED.format(url=url, reason=exc), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
    if response.status_code == 200:
        if not args.json:
            apis = body["apis"]
            summary = ", ".join(f"{len(apis[k])} {k}" for k in ("added", "changed", "removed"))
            print(f"reloaded: {summary}")
        return 0
    print(RELOAD_FAILED.format(url=url, reason=body.get("detail", response.text)), file=sys.stderr)
    for problem in body.get("problems", []):
        print(problem, file=sys.stderr)
    return 1
