"""Write the configs of a local cluster from the embedded estate (tiergate.yaml).

Every in-process API (`asgi:module:attr`) becomes a separate uvicorn service on its
own port; each gateway node gets the same config with its own listener ports. The
demo `echo` service (deploy/echo.py) is added with a shared per-IP limit, so the
cluster shows one count across nodes even before any tier API exists.

    python deploy/make_config.py RUN_DIR --nodes 8181:8191,8182:8192 --api-port 9100
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so API modules resolve as uvicorn (run from ROOT) sees them
ECHO = {
    "name": "echo",
    "tier": "experience",
    "contract": str(ROOT / "deploy" / "echo.yaml"),
    "description": "Cluster demo: answers with the serving process.",
    "upstream": {"targets": ["asgi:deploy.echo:app"]},
    # open to anyone (the estate's default jwt/tier-guard do not apply to the demo)
    "policies": {"jwt": False, "tier-guard": False,
                 "rate-limit": {"anonymous": ["100/minute"], "on_storage_error": "fail_open"}},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--source", type=Path, default=ROOT / "tiergate.yaml")
    parser.add_argument("--nodes", default="8181:8191,8182:8192", help="public:admin,...")
    parser.add_argument("--api-port", type=int, default=9100, help="first port of the APIs")
    parser.add_argument("--storage-timeout", type=float, help="rate_limiting.storage_timeout")
    parser.add_argument(
        "--issuer",
        default="http://127.0.0.1:8080",
        help="oauth.issuer shared by every node: the load balancer's URL (else each node's "
        "issuer would be its own listener and tokens would not cross nodes)",
    )
    args = parser.parse_args()

    raw = yaml.safe_load(args.source.read_text()) or {}
    apis = [copy.deepcopy(api) for api in raw.get("apis") or []]
    if not any(api.get("name") == "echo" for api in apis):
        apis.append(copy.deepcopy(ECHO))
    services = []
    port = args.api_port
    for api in apis:
        contract = Path(api["contract"])
        if not contract.is_absolute():
            api["contract"] = str((args.source.parent / contract).resolve())
        targets = []
        for target in api["upstream"]["targets"]:
            if target.startswith("asgi:"):
                _, module, attr = target.split(":", 2)
                if importlib.util.find_spec(module.split(".")[0]) is None:
                    raise SystemExit(f"make_config: module {module} of API {api['name']} not found")
                # 4th field: does it call a tier below (and so need a service identity)?
                needs = "service" if api.get("depends_on") else "-"
                services.append(f"{api['name']} {module}:{attr} {port} {needs}")
                targets.append(f"http://127.0.0.1:{port}")
                port += 1
            else:
                targets.append(target)
        api["upstream"]["targets"] = targets
    args.run_dir.mkdir(parents=True, exist_ok=True)
    for index, pair in enumerate(args.nodes.split(","), start=1):
        public, admin = (int(p) for p in pair.split(":"))
        node = {k: v for k, v in raw.items() if k not in ("apis", "listeners")}
        node["listeners"] = {
            "public": {"host": "127.0.0.1", "port": public},
            "admin": {"host": "127.0.0.1", "port": admin},
        }
        node["trusted_proxies"] = ["127.0.0.1/32"]  # nginx: believe its X-Forwarded-For
        node["oauth"] = {**(node.get("oauth") or {}), "issuer": args.issuer}
        if args.storage_timeout:
            node["rate_limiting"] = {
                **(node.get("rate_limiting") or {}),
                "storage_timeout": args.storage_timeout,
            }
        node["apis"] = apis
        (args.run_dir / f"node{index}.yaml").write_text(yaml.safe_dump(node, sort_keys=False))
    (args.run_dir / "services.txt").write_text("".join(line + "\n" for line in services))


if __name__ == "__main__":
    main()
