"""Orders system API (the ERP): `uvicorn apis.system.orders:app`."""

from apis.system.orders.routes import create_app

app = create_app()

__all__ = ["app", "create_app"]
