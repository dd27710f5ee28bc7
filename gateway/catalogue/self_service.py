"""Partner self-service in the catalogue: a signed-in partner manages the API keys of
their own consumer (config: `catalogue.sign_in.partners`) and sees its usage and quota.

Every key action loads the key and checks that it belongs to the viewer's consumer
before anything happens; a key of another consumer answers exactly like a key that does
not exist (404), so key ids of others cannot be probed. Every form is CSRF-protected by
the session's token. A new or rotated key is shown once, in the answer to the POST."""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.catalogue.sign_in import CSRF_FIELD, CatalogueSignIn, Refused, Viewer, sign_in_link
from gateway.config.models import GatewayConfig
from gateway.limits.engine import Limiter, StorageUnavailable
from gateway.registry import ApiKeyRecord, Conflict, Registry

KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ROTATION_OVERLAP = 3600.0  # seconds the old key keeps working after a rotation
MAX_ACTIVE_KEYS = 20  # per consumer, through self-service
NOT_A_PARTNER = (
    "You are signed in as {username}, who manages no partner's keys. Ask the API team to "
    "link your account to your organisation."
)
NO_SUCH_KEY = "You have no API key with this id."
NO_PLAN = "Your organisation has no plan yet, so no key can be issued. Ask the API team."
USAGE_UNAVAILABLE = "Usage cannot be read right now."
TOO_MANY_KEYS = (
    "Your organisation already has {count} active keys, the most self-service allows. "
    "Revoke one you no longer use first."
)


class SelfService:
    def __init__(
        self,
        config: GatewayConfig,
        sign_in: CatalogueSignIn,
        render: Any,
        registry: Registry,
        limiter: Limiter | None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.limiter = limiter
        self.sign_in = sign_in
        self.render = render  # (request, template, context, status, viewer) -> Response
        settings = sign_in.config
        self.apis = list(settings.key_apis)
        self.plan = settings.key_plan

    # -- pages -------------------------------------------------------------------------

    async def keys(self, request: Request) -> Response:
        viewer = await self.sign_in.viewer(request)
        if viewer is None:
            return RedirectResponse(sign_in_link("/catalogue/keys"), 303)
        consumer = _partner(viewer)
        return await self._keys_page(request, viewer, consumer, None, 200)

    async def create(self, request: Request) -> Response:
        viewer = await self.sign_in.viewer(request)
        await self.sign_in.form(request, viewer)
        assert viewer is not None
        consumer = _partner(viewer)
        plan = self.plan or await self._consumer_plan(consumer)
        if plan is None:
            raise Refused(409, NO_PLAN)
        now = time.time()
        active = [k for k in await self._keys(consumer) if k.usable(now)]
        if len(active) >= MAX_ACTIVE_KEYS:
            raise Refused(409, TOO_MANY_KEYS.format(count=len(active)))
        record, key = await self.registry.create_api_key(consumer, plan, self.apis)
        return await self._keys_page(request, viewer, consumer, (record, key), 201)

    async def rotate(self, request: Request) -> Response:
        viewer = await self.sign_in.viewer(request)
        await self.sign_in.form(request, viewer)
        assert viewer is not None
        record = await self._own_key(request, _partner(viewer))
        try:
            new, key = await self.registry.rotate_api_key(record.id, ROTATION_OVERLAP)
        except Conflict as error:
            raise Refused(409, str(error).capitalize() + ".") from None
        return await self._keys_page(request, viewer, record.consumer_id, (new, key), 201)

    async def revoke(self, request: Request) -> Response:
        viewer = await self.sign_in.viewer(request)
        await self.sign_in.form(request, viewer)
        assert viewer is not None
        record = await self._own_key(request, _partner(viewer))
        await self.registry.revoke_api_key(record.id)
        return RedirectResponse("/catalogue/keys", 303)

    # -- helpers ---------------------------------------------------------------------------

    async def _own_key(self, request: Request, consumer: str) -> ApiKeyRecord:
        key_id = request.path_params["key_id"]
        record = await self.registry.api_key(key_id) if KEY_ID.fullmatch(key_id) else None
        if record is None or record.consumer_id != consumer:
            raise Refused(404, NO_SUCH_KEY)
        return record

    async def _keys(self, consumer: str) -> list[ApiKeyRecord]:
        return [k for k in await self.registry.list_api_keys() if k.consumer_id == consumer]

    async def _consumer_plan(self, consumer: str) -> str | None:
        record = await self.registry.consumer(consumer)
        return record.plan if record is not None else None

    async def _keys_page(
        self,
        request: Request,
        viewer: Viewer,
        consumer: str,
        created: tuple[ApiKeyRecord, str] | None,
        status: int,
    ) -> Response:
        now = time.time()
        keys = [k.public(now) for k in await self._keys(consumer)]
        plan = self.plan or await self._consumer_plan(consumer)
        plan_config = self.config.plans.get(plan) if plan else None
        usage: dict[str, Any] | None = None
        limiter = self.limiter
        if limiter is not None:
            try:
                usage = await limiter.usage(
                    consumer, plan_config.quotas if plan_config is not None else None
                )
            except StorageUnavailable:
                usage = None
        context = {
            "consumer": consumer,
            "keys": keys,
            "plan": plan,
            "plan_limits": plan_config.limits if plan_config is not None else [],
            "usage": usage,
            "usage_unavailable": USAGE_UNAVAILABLE if usage is None else None,
            "key_apis": self.apis,
            "created": None if created is None else {**created[0].public(now), "key": created[1]},
            "csrf_field": CSRF_FIELD,
        }
        response: Response = self.render(request, "keys.html", context, status, viewer)
        response.headers["Cache-Control"] = "no-store"
        return response


def _partner(viewer: Viewer) -> str:
    if viewer.consumer is None:
        raise Refused(403, NOT_A_PARTNER.format(username=viewer.username))
    return viewer.consumer
