"""Tiergate: an API gateway for API-led connectivity."""

from gateway.app import Gateway
from gateway.config import ConfigError, GatewayConfig
from gateway.loading import load_config
from gateway.stack import build_gateway, create_app

__all__ = [
    "ConfigError",
    "Gateway",
    "GatewayConfig",
    "build_gateway",
    "create_app",
    "load_config",
]
