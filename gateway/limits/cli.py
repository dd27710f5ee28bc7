"""`tiergate usage CONSUMER`: a consumer's usage this day and month, read through the
admin API of a running gateway (so it works with memory:// and redis:// alike)."""

from __future__ import annotations

import argparse
import json
import sys

import httpx

from gateway.admin.token import admin_call

USAGE_FAILED = "tiergate: cannot read usage from {url}: {reason}"


def register(sub: argparse._SubParsersAction) -> None:
    usage = sub.add_parser("usage", help="a consumer's requests this UTC day and month")
    usage.add_argument("consumer", help="consumer id")
    usage.add_argument("--plan", help="also show this plan's quotas")
    usage.add_argument("--config", help="config file (default: $TIERGATE_CONFIG or tiergate.yaml)")
    usage.add_argument("--admin-url", help="admin listener URL (default: from the config)")
    usage.add_argument("--json", action="store_true", help="print the JSON document")
    usage.set_defaults(handler=cmd_usage)


def cmd_usage(args: argparse.Namespace) -> int:
    target = admin_call(args.config, args.admin_url, f"/admin/usage/{args.consumer}")
    if target is None:
        return 2
    url, token = target
    try:
        response = httpx.get(
            url,
            params={"plan": args.plan} if args.plan else None,
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        print(USAGE_FAILED.format(url=url, reason=exc), file=sys.stderr)
        return 1
    if response.status_code != 200:
        try:
            reason = response.json().get("detail", response.text)
        except ValueError:
            reason = response.text
        print(USAGE_FAILED.format(url=url, reason=reason), file=sys.stderr)
        return 1
    body = response.json()
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    print(f"consumer {body['consumer']}" + (f" (plan {body['plan']})" if body.get("plan") else ""))
    for period in ("daily", "monthly"):
        entry = body[period]
        quota = f" of {entry['quota']} ({entry['remaining']} left)" if entry["quota"] else ""
        print(f"  {period:8} {entry['period']}: {entry['used']} requests{quota}")
    return 0
