"""Customers system API (the CRM): `uvicorn apis.system.customers:app`."""

from apis.system.customers.routes import create_app

app = create_app()

__all__ = ["app", "create_app"]
