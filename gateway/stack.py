"""Start-up in one function: what the gateway is built from, in the order it runs.

Read top to bottom, `build_gateway` is the start-up order (as in KrakenD's lura
`newStack`): config → registry → key ring/issuer → limiter → observability → policies
→ routes → apps. Each part is given exactly what it uses; the shared services are
handed over in one frozen `Services`. The gateway starts its components in the order
listed here when its lifespan begins (opening stores, loading keys, provisioning
service identities), then builds each route's forwarder and policy chain, and stops
them in reverse.
"""

from __future__ import annotations

from functools import partial

from gateway.admin.identity import IdentityAdminComponent
from gateway.app import Gateway
from gateway.cache.component import CacheComponent
from gateway.catalogue.component import CatalogueComponent
from gateway.components import Component, ComponentFactory
from gateway.config.models import GatewayConfig
from gateway.limits.component import LimitsComponent
from gateway.oauth.component import OAuthComponent
from gateway.oauth.keys import KeyRing
from gateway.oauth.revocations import RevocationCache
from gateway.observability.component import GatewayGauges, ObservabilityComponent
from gateway.policies import policies as published_policies
from gateway.registry.component import RegistryComponent
from gateway.reload.component import ReloadComponent
from gateway.services import Services


def build_gateway(config: GatewayConfig) -> Gateway:
    """The gateway `config` describes (already loaded and checked: gateway.loading)."""
    # Registry: consumers, clients, keys, plans; every identity service reads it.
    registry = RegistryComponent(config)
    store = registry.registry
    # Key ring (the built-in issuer) and revocations: tokens are signed and checked with them.
    ring = KeyRing(store, config.oauth)
    revocations = RevocationCache(store, config.oauth.refresh_interval)
    # Limiter: rate-limit counters for the policies, the OAuth endpoints and sign-in.
    limits = LimitsComponent(config)
    caches = CacheComponent(config)
    # Observability: metrics, data flow and (when configured) spans.
    observability = ObservabilityComponent(config)
    services = Services(
        registry=store,
        issuer=ring,
        revocations=revocations,
        limiter=limits.limiter,
        response_cache=caches.registry,
        dataflow=observability.dataflow,
        tracer=observability.tracer,
    )
    # Policies: every published PolicySpec (entry points); each route's chain is built
    # from them at start, each policy given the services its spec needs.
    policies = published_policies()
    # Components in start order. Those that read the running gateway are factories, called
    # with it (the OAuth sign-in page asks it for the client's address).
    credentials = services.service_credentials  # filled by the OAuth component at start
    components: list[Component | ComponentFactory] = [
        registry,
        lambda gateway: OAuthComponent(
            config, ring, revocations, limits.limiter, credentials, gateway.client_ip
        ),
        IdentityAdminComponent(config, store, credentials),
        limits,
        caches,
        observability,
    ]
    metrics = observability.metrics
    if metrics is not None:
        components.append(partial(GatewayGauges, metrics=metrics, services=services))
    components += [
        partial(CatalogueComponent, services=services),
        partial(ReloadComponent, metrics=metrics),
    ]
    # Routes and apps: the route table, the public app and its shell; the admin app is
    # built from the same components by gateway.admin.create_admin_app.
    return Gateway(
        config,
        services,
        policies,
        components,
        shell_guards=limits.shell_guards(),
        observers=observability.observers(),
        unrouted_observers=observability.unrouted_observers(),
        tracer=observability.tracer,
    )


# The public name (gateway.create_app): an ASGI app for a config.
create_app = build_gateway

__all__ = ["build_gateway", "create_app"]
