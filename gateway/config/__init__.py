"""Configuration: the models and the YAML/environment reader. A leaf: it imports nothing
of the gateway but `problem`/`types`; `gateway.loading` adds the policies' configs."""

from gateway.config.errors import ConfigError
from gateway.config.loader import contract_path
from gateway.config.models import ApiConfig, GatewayConfig, UpstreamConfig

__all__ = [
    "ApiConfig",
    "ConfigError",
    "GatewayConfig",
    "UpstreamConfig",
    "contract_path",
]
