"""An in-process API whose routes differ from its contract (for the drift check)."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def answer(request):
    return JSONResponse({})


app = Starlette(
    routes=[
        Route("/items", answer, methods=["GET"]),
        Route("/items/{item_id:int}", answer, methods=["GET", "DELETE"]),
    ]
)
