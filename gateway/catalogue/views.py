"""Catalogue endpoints: HTML pages (no JavaScript needed) and the JSON API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from gateway.catalogue.graph import related, render_svg
from gateway.catalogue.model import TIER_ORDER, ApiEntry, Catalogue
from gateway.catalogue.security_headers import SECURITY_HEADERS
from gateway.catalogue.sign_in import CSRF_FIELD, CatalogueSignIn, Refused, Viewer, sign_in_link
from gateway.catalogue.viewer import ViewerPolicy
from gateway.observability.dataflow import DataFlow
from gateway.problem import Answer, ProblemResponse

NO_SUCH_API = "No API named '{name}' is in the catalogue."
BAD_FILTER = "Unknown {field} '{value}'; use one of: {choices}."
LIFECYCLES = ("draft", "published", "deprecated")
PAGE_HEADERS = {
    **{name.decode(): value.decode() for name, value in SECURITY_HEADERS},
    "cache-control": "no-cache",
}
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters["utc"] = lambda ts: datetime.fromtimestamp(ts, UTC).strftime(
    "%Y-%m-%d %H:%M UTC"
)


class CatalogueViews:
    def __init__(
        self,
        catalogue: Catalogue,
        viewer: ViewerPolicy,
        title: str,
        dataflow: DataFlow | None,
        sign_in: CatalogueSignIn | None = None,
    ) -> None:
        self.dataflow = dataflow
        self.catalogue = catalogue
        self.viewer = viewer
        self.title = title
        self.sign_in = sign_in

    # -- helpers -------------------------------------------------------------

    def _traffic(self) -> dict[tuple[str, str], dict[str, object]]:
        """Live calls/min and error rate per edge, from the gateway's own counters."""
        flow = self.dataflow
        if flow is None:
            return {}
        return {(str(e["from"]), str(e["to"])): e for e in flow.snapshot()}

    async def _signed_in(self, request: Request) -> Viewer | None:
        return None if self.sign_in is None else await self.sign_in.viewer(request)

    async def _visible(
        self, request: Request, signed_in: Viewer | None = None
    ) -> tuple[list[ApiEntry], bool]:
        internal = self.viewer.sees_internal(request) or (signed_in is not None and signed_in.staff)
        return self.catalogue.visible(internal), internal

    async def _entry(
        self, request: Request, signed_in: Viewer | None = None
    ) -> tuple[ApiEntry | None, list[ApiEntry]]:
        if signed_in is None:
            signed_in = await self._signed_in(request)
        visible, _ = await self._visible(request, signed_in)
        name = request.path_params["name"]
        entry = next((e for e in visible if e.name == name), None)
        return entry, visible

    def _filters(self, request: Request, strict: bool = False) -> dict[str, str] | ProblemResponse:
        """Filters from the query. The HTML form sends empty values for "any"; the JSON
        API is strict and refuses an empty or unknown tier or lifecycle."""
        params = request.query_params
        filters = {k: params.get(k, "").strip() for k in ("q", "tier", "owner", "tag", "lifecycle")}
        for field, choices in (("tier", TIER_ORDER), ("lifecycle", LIFECYCLES)):
            given = field in params if strict else bool(filters[field])
            if given and filters[field] not in choices:
                detail = BAD_FILTER.format(
                    field=field, value=filters[field], choices=", ".join(choices)
                )
                return ProblemResponse(400, detail)
        return filters

    def _not_found(self, request: Request) -> Answer:
        detail = NO_SUCH_API.format(name=request.path_params["name"])
        return ProblemResponse(404, detail)

    # -- HTML -----------------------------------------------------------------

    async def index(self, request: Request) -> Answer:
        filters = self._filters(request)
        if not isinstance(filters, dict):
            return filters
        signed_in = await self._signed_in(request)
        visible, internal = await self._visible(request, signed_in)
        shown = [e for e in visible if e.matches(**filters)]
        return self.render(
            request,
            "index.html",
            {
                "filters": filters,
                "groups": [(t, [e for e in shown if e.tier == t]) for t in TIER_ORDER],
                "count": len(shown),
                "tiers": TIER_ORDER if internal else ("experience",),
                "owners": self.catalogue.owners(visible),
                "tags": self.catalogue.tags(visible),
                "lifecycles": LIFECYCLES if internal else LIFECYCLES[1:],
                "graph": render_svg(visible, traffic=self._traffic()),
                "internal": internal,
            },
            viewer=signed_in,
        )

    async def page(self, request: Request) -> Answer:
        signed_in = await self._signed_in(request)
        entry, visible = await self._entry(request, signed_in)
        if entry is None:
            return self._not_found(request)
        names = {e.name for e in visible}
        neighbourhood = related(self.catalogue.by_name, entry.name) & names
        detail = entry.detail_json(names)
        traffic = self._traffic()
        live = [
            edge
            for (caller, callee), edge in sorted(traffic.items())
            if entry.name in (caller, callee) and {caller, callee} - {"clients"} <= names
        ]
        shown = [e for e in visible if e.name in neighbourhood]
        return self.render(
            request,
            "api.html",
            {
                "api": entry,
                "detail": detail,
                "graph": render_svg(shown, entry.name, traffic),
                "traffic": live,
            },
            viewer=signed_in,
        )

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        status: int = 200,
        viewer: Viewer | None = None,
    ) -> Response:
        """A page; the header shows the signed-in user or a sign-in link."""
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        common = {
            "title": self.title,
            "sign_in": self.sign_in is not None,
            "sign_in_href": sign_in_link(here),
            "viewer": viewer,
            "csrf_field": CSRF_FIELD,
        }
        return _html(template, {**common, **context}, status)

    def refusal(self, request: Request, error: Refused) -> Answer:
        """A refused catalogue action: a page for a browser, problem+json otherwise."""
        headers = {"retry-after": str(error.retry_after)} if error.retry_after else {}
        if "text/html" not in request.headers.get("accept", ""):
            return ProblemResponse(error.status, error.message, headers=headers.items())
        page = self.render(request, "refused.html", {"message": error.message}, error.status)
        page.headers.update(headers)
        return page

    # -- JSON -----------------------------------------------------------------

    async def list_json(self, request: Request) -> Answer:
        filters = self._filters(request, strict=True)
        if not isinstance(filters, dict):
            return filters
        visible, _ = await self._visible(request, await self._signed_in(request))
        items = [e.summary_json() for e in visible if e.matches(**filters)]
        return JSONResponse({"apis": items, "count": len(items)})

    async def detail_json(self, request: Request) -> Answer:
        entry, visible = await self._entry(request)
        if entry is None:
            return self._not_found(request)
        return JSONResponse(entry.detail_json({e.name for e in visible}))

    async def contract_json(self, request: Request) -> Answer:
        entry, _ = await self._entry(request)
        if entry is None:
            return self._not_found(request)
        return JSONResponse(entry.document)

    async def contract_yaml(self, request: Request) -> Answer:
        entry, _ = await self._entry(request)
        if entry is None:
            return self._not_found(request)
        text = yaml.safe_dump(entry.document, sort_keys=False, allow_unicode=True)
        return Response(text, media_type="application/yaml")


def _html(template: str, context: dict[str, Any], status: int = 200) -> Response:
    body = _TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
