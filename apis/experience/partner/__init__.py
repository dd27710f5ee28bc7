"""partner experience API: B2B availability, price list, bulk ordering and order status
(`uvicorn apis.experience.partner:app`)."""

from apis.experience.partner.routes import create_app

app = create_app()

__all__ = ["app", "create_app"]
