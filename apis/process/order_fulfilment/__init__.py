"""order-fulfilment process API: browse stock and place orders as a saga
(`uvicorn apis.process.order_fulfilment:app`)."""

from apis.process.order_fulfilment.routes import create_app

app = create_app()

__all__ = ["app", "create_app"]
