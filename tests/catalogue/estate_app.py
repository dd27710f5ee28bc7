"""A tiny upstream for catalogue tests: answers every API of the test estate."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def items(request: Request) -> JSONResponse:
    return JSONResponse({"items": [{"sku": "SKU-1", "name": "Kettle"}], "next_cursor": None})


app = Starlette(routes=[Route("/items", items)])
