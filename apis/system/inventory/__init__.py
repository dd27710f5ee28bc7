"""Inventory system API (the warehouse): `uvicorn apis.system.inventory:app`."""

from apis.system.inventory.routes import create_app

app = create_app()

__all__ = ["app", "create_app"]
