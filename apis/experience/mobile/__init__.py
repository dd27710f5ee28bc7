"""mobile experience API: compact payloads for the shop app
(`uvicorn apis.experience.mobile:app`)."""

from apis.experience.mobile.routes import create_app

app = create_app()

__all__ = ["app", "create_app"]
