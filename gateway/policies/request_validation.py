"""Policy `request-validation`: requests checked against the API's OpenAPI 3.1 contract.

The contract (`apis[].contract`) is compiled once at start-up
(gateway/policies/_contract.py) and the gateway resolves every request to one of its
operations before any policy runs (gateway/operations.py: unknown paths get 404,
unknown methods 405, from the gateway itself). Per request, on `ctx.operation`:

- path parameters, query and header parameters → 400 problem+json listing
  `errors: [{in, name, detail}]` (gateway/policies/_request_errors.py: the shape and
  the 400/422 rule every contract documents);
- a JSON body is read (at most `max_body_bytes`), parsed and validated before
  anything is forwarded, then handed on unchanged; parameter errors are reported
  before the body is read. Missing or malformed JSON → 400; a JSON body that breaks
  the schema → 422 (`errors: [{in: body, pointer, detail}]`). A media type the
  operation does not accept → 415.

`responses: shadow` also checks what the upstream answers (status declared,
JSON body against its schema, up to `max_response_bytes`), never blocking:
drift is logged (`response_drift` in the access log and a warning) and counted
in `DRIFT[api]`.

Not on by default: experience APIs turn it on with `request-validation: {}`
(see docs/policies-edge.md for why the loader does not add it implicitly).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any, Literal

from pydantic import Field

from gateway import strict_json
from gateway.channels import RequestRejected, whole_body_check
from gateway.config import contract_path
from gateway.config.base import StrictModel
from gateway.config.models import GatewayConfig
from gateway.context import ChannelWrapper, RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.policies._contract import (
    ContractError,
    Operation,
    errors_of,
    load_contract,
)
from gateway.policies._request_errors import body_error, detail_of, request_errors, status_of
from gateway.problem import ProblemResponse
from gateway.types import Message, Receive, Send

NO_CONTRACT = "API {api!r}: request-validation needs a contract (`contract:` in the config)"
BODY_REQUIRED = "This request needs a JSON body."
NOT_JSON = "The request body is not valid JSON: {error}."
UNSUPPORTED_MEDIA = "API '{api}' does not accept {media!r} here; it accepts {accepted}."
BODY_TOO_LARGE = "The request body exceeds {limit} bytes, the most this API validates."
log = logging.getLogger("tiergate.request_validation")
DRIFT: Counter[str] = Counter()  # responses that did not match the contract, per API


class RequestValidationConfig(StrictModel):
    body: bool = Field(True, description="Validate JSON request bodies (they are read first).")
    max_body_bytes: int = Field(
        1 << 20, ge=0, le=1 << 26, description="Largest body read for validation; larger → 413."
    )
    responses: Literal["off", "shadow"] = Field(
        "off", description="shadow: check upstream responses, log and count drift, never block."
    )
    max_response_bytes: int = Field(
        1 << 18, ge=0, description="Responses larger than this are checked for status only."
    )


class RequestValidationPolicy:
    def __init__(self, config: RequestValidationConfig, api: str) -> None:
        self.api = api
        self.body = config.body
        self.max_body = config.max_body_bytes
        self.shadow = config.responses == "shadow"
        self.max_response = config.max_response_bytes

    async def __call__(self, ctx: RequestContext) -> ProblemResponse | None:
        resolved = ctx.operation
        assert resolved is not None, "request-validation is built only for APIs with a contract"
        op = resolved.operation
        instance = op.instance(resolved.params, ctx.query, ctx.headers)
        has_body = ctx.header(b"transfer-encoding") is not None or (
            ctx.header(b"content-length") not in (None, b"0")
        )
        if has_body and op.media:
            media = (ctx.header(b"content-type") or b"").split(b";", 1)[0].strip().lower()
            if media.decode("latin-1") not in op.media:
                accepted = ", ".join(op.media)
                detail = UNSUPPORTED_MEDIA.format(
                    api=self.api, media=media.decode("latin-1"), accepted=accepted
                )
                return ProblemResponse(415, detail)
        errors = request_errors(op.validator, instance)
        if not has_body and op.body_required:
            return self._malformed([*errors, body_error(BODY_REQUIRED)])
        if errors:
            return self._invalid(errors)
        if has_body and op.json_body and self.body:
            ctx.channel_wrappers.append(self._body_check(op, instance))
        if self.shadow:
            ctx.channel_wrappers.append(self._response_check(ctx, op))
        return None

    def _invalid(self, errors: list[dict[str, str]]) -> ProblemResponse:
        return ProblemResponse(status_of(errors), detail_of(errors), errors=errors)

    def _malformed(self, errors: list[dict[str, str]]) -> ProblemResponse:
        """The body is missing or not JSON (last in `errors`): 400, whatever else is wrong."""
        return ProblemResponse(400, errors[-1]["detail"], errors=errors)

    def _body_check(self, op: Operation, instance: dict[str, Any]) -> ChannelWrapper:
        def check(body: bytes) -> None:
            try:
                instance["body"] = strict_json.loads(body)
            except ValueError as error:
                problem = [body_error(NOT_JSON.format(error=error))]
                raise RequestRejected(self._malformed(problem)) from None
            errors = request_errors(op.validator, instance)
            if errors:
                raise RequestRejected(self._invalid(errors))

        too_large = BODY_TOO_LARGE.format(limit=self.max_body)
        return whole_body_check(self.max_body, too_large, check)

    def _response_check(self, ctx: RequestContext, op: Operation) -> Any:
        def wrap(receive: Receive, send: Send) -> tuple[Receive, Send]:
            state: dict[str, Any] = {"schema": None, "parts": [], "size": 0}

            async def send_checked(message: Message) -> None:
                await send(message)
                try:
                    self._observe(ctx, op, message, state)
                except Exception:  # shadow mode must never break a response
                    log.exception("response validation failed for %s", self.api)

            return receive, send_checked

        return wrap

    def _observe(
        self, ctx: RequestContext, op: Operation, message: Message, state: dict[str, Any]
    ) -> None:
        if message["type"] == "http.response.start":
            status = str(message["status"])
            if not op.declares(status):
                drift = [{"pointer": "/status", "detail": f"status {status} is not declared"}]
                self._drift(ctx, op, drift)
                return
            headers = dict(message.get("headers", []))
            media = headers.get(b"content-type", b"").split(b";", 1)[0].decode("latin-1")
            state["schema"] = op.response_validator(status, media.strip().lower())
            return
        if message["type"] != "http.response.body" or state["schema"] is None:
            return
        chunk = message.get("body", b"")
        state["size"] += len(chunk)
        if state["size"] > self.max_response:
            state["schema"] = None
            return
        state["parts"].append(chunk)
        if message.get("more_body", False):
            return
        try:
            document = json.loads(b"".join(state["parts"]))
        except ValueError as error:
            self._drift(ctx, op, [{"pointer": "/body", "detail": f"not valid JSON: {error}"}])
            return
        errors = errors_of(state["schema"], document)
        if errors:
            self._drift(ctx, op, errors)

    def _drift(self, ctx: RequestContext, op: Operation, errors: list[dict[str, str]]) -> None:
        DRIFT[self.api] += 1
        ctx.log["response_drift"] = errors[:5]
        log.warning("response drift %s %s %s: %s", self.api, op.method, op.template, errors[:5])


def check_contracts(config: GatewayConfig) -> list[str]:
    """`tiergate check`: every contract request-validation uses must compile."""
    problems = []
    for api in config.apis:
        if "request-validation" in api.policy_configs:
            if api.contract is None:
                problems.append(NO_CONTRACT.format(api=api.name))
                continue
            try:
                load_contract(contract_path(config, api.contract), strict=False)
            except ContractError as error:
                problems.append(f"API {api.name!r}: request-validation: {error}")
    return problems


def build(config: RequestValidationConfig, ctx: BuildContext) -> RequestValidationPolicy:
    if ctx.contract is None:
        raise RuntimeError(NO_CONTRACT.format(api=ctx.api.name))
    return RequestValidationPolicy(config, ctx.api.name)


SPEC = PolicySpec(
    name="request-validation",
    priority=PRIORITY["request-validation"],
    config_model=RequestValidationConfig,
    build=build,
    description="Requests checked against the API's OpenAPI contract (400/404/405/415).",
)
