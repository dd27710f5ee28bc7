"""Configuration: models (pure) and the YAML/environment loader."""

from gateway.config.errors import ConfigError
from gateway.config.loader import contract_path, load_config
from gateway.config.models import ApiConfig, GatewayConfig, UpstreamConfig

__all__ = [
    "ApiConfig",
    "ConfigError",
    "GatewayConfig",
    "UpstreamConfig",
    "contract_path",
    "load_config",
]
