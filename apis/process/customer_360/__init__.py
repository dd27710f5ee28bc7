"""customer-360 process API: one customer with recent orders and credit position
(`uvicorn apis.process.customer_360:app`)."""

from apis.process.customer_360.routes import create_app

app = create_app()

__all__ = ["app", "create_app"]
