"""Tiergate: an API gateway for API-led connectivity."""

from gateway.app import Gateway, create_app
from gateway.config import ConfigError, GatewayConfig
from gateway.loading import load_config

__all__ = ["ConfigError", "Gateway", "GatewayConfig", "create_app", "load_config"]
