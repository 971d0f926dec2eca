"""The ASGI app: ``GET /v1/models`` and ``POST /v1/chat/completions``, behind a guard.

``model`` is a collection of the library, so ``/v1/models`` lists the collections. Answers come
from :meth:`AssistantService.ask` through :class:`TurnQueue` (several at once when the model
server has parallel slots); a request waits for its turn, and a client that disconnects, while
waiting or mid-answer, stops it. No CORS headers are sent, so a
web page in the user's browser cannot read the answers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.api.chat_request import ChatRequest, parse_chat_request
from assistant.api.chat_response import DONE, AnswerTracker, sse
from assistant.api.errors import ApiError
from assistant.api.server import is_loopback
from assistant.api.turns import RunningTurn, TurnQueue, TurnRequest
from assistant.budget import QuestionTooLongError
from assistant.display import to_json
from assistant.events import AnswerFailed
from assistant.service import AssistantService
from assistant.settings import ServeConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")

_CLIENT_ERRORS = {QuestionTooLongError.title: (400, "context_length_exceeded")}
"""Turn failures that are the request's fault, by the title the pipeline gives them."""


def create_app(service: AssistantService, config: ServeConfig) -> Starlette:
    """The API over ``service``; the caller closes the service. Turns overlap as far as the
    loaded model allows (one at a time when it is not loaded yet)."""
    status = service.model_status()
    turns = TurnQueue(service, config.max_waiting, status.parallel if status else 1)
    routes = _Routes(service, turns, max_body=config.max_request_kb * 1024)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.to_thread(turns.close)

    token = config.token.get_secret_value() if config.token is not None else None
    app = Starlette(
        routes=[
            Route("/v1/models", routes.models, methods=["GET"]),
            Route("/v1/chat/completions", routes.chat_completions, methods=["POST"]),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.add_middleware(_Guard, token=token)
    return app


class _Routes:
    def __init__(self, service: AssistantService, turns: TurnQueue, *, max_body: int) -> None:
        self._service = service
        self._turns = turns
        self._max_body = max_body
        self._started = int(time.time())

    async def models(self, request: Request) -> Response:
        collections = await asyncio.to_thread(self._service.collections)
        return _json(
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": self._started,
                        "owned_by": "minicpm-assistant",
                    }
                    for name in collections
                ],
            }
        )

    async def chat_completions(self, request: Request) -> Response:
        chat = parse_chat_request(await _read_body(request, self._max_body))
        await self._check_collection(chat.collection)
        turn = self._turns.start(
            TurnRequest(
                question=chat.question,
                history=chat.history,
                collection=chat.collection,
                document=chat.document,
                allow_general=chat.allow_general,
                think=chat.think,
            )
        )
        tracker = AnswerTracker(chat.collection)
        streaming = False
        try:
            opening = await _unless_disconnected(request, _first_output(turn, tracker))
            if opening is None:
                return Response(status_code=499)  # nobody reads it: the client has gone
            if tracker.failed is not None:  # before anything was sent: an HTTP error status
                raise _turn_error(tracker.failed)
            if chat.stream:
                streaming = True
                return StreamingResponse(
                    _stream(chat, turn, tracker, opening),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"},
                )
            if await _unless_disconnected(request, _until_end(turn, tracker)) is None:
                return Response(status_code=499)
            if tracker.finished is None:
                raise _turn_error(tracker.failed or _unfinished())
            return _json(tracker.completion(tracker.finished))
        finally:
            if not streaming:
                turn.stop()

    async def _check_collection(self, name: str) -> None:
        collections = await asyncio.to_thread(self._service.collections)
        if name in collections:
            return
        if collections:
            known = ", ".join(repr(c) for c in collections)
            message = f"no collection named {name!r}; the models here are the collections {known}"
        else:
            message = (
                f"no collection named {name!r}: the library is empty; add documents with "
                "`minicpm-assistant ingest PATH`"
            )
        raise ApiError(404, message, code="model_not_found", param="model")


async def _first_output(turn: RunningTurn, tracker: AnswerTracker) -> dict[str, str]:
    """Events up to the first answer or thinking text (or the end); returns its delta."""
    async for event in turn:
        if delta := tracker.add(event):
            return delta
        if tracker.ended:
            break
    return {}


async def _until_end(turn: RunningTurn, tracker: AnswerTracker) -> bool:
    async for event in turn:
        tracker.add(event)
    return True


async def _stream(
    chat: ChatRequest, turn: RunningTurn, tracker: AnswerTracker, opening: dict[str, str]
) -> AsyncIterator[str]:
    """Chunks of the answer as it is generated, then the sources; an error mid-answer is an
    ``error`` event, which ``openai`` raises as ``APIError``. Cancelled when the client goes."""
    try:
        yield sse(tracker.chunk({"role": "assistant", "content": "", **opening}))
        async for event in turn:
            if delta := tracker.add(event):
                yield sse(tracker.chunk(delta))
        if tracker.finished is not None:
            yield sse(tracker.last_chunk(tracker.finished))
            if chat.include_usage:
                yield sse(tracker.usage_chunk(tracker.finished))
        else:
            yield sse(_turn_error(tracker.failed or _unfinished()).body())
        yield DONE
    finally:
        turn.stop()


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """``work``'s result; None, with ``work`` cancelled, when the client disconnects first."""
    working = asyncio.ensure_future(work)
    watching = asyncio.ensure_future(_disconnected(request.receive))
    try:
        done, _ = await asyncio.wait({working, watching}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request cancelled (shutdown): so is its work
        working.cancel()
        raise
    finally:
        watching.cancel()
    if working in done:
        return working.result()
    working.cancel()
    return None


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The JSON body, at most ``limit`` bytes. JSON only: a web page can post a form to this
    port without asking first (no CORS preflight), but not JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "send the request as JSON (Content-Type: application/json)")
    too_large = ApiError(
        413,
        f"the request is larger than {limit // 1024} KiB ([serve] max_request_kb)",
        code="request_too_large",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _turn_error(failed: AnswerFailed) -> ApiError:
    status, code = _CLIENT_ERRORS.get(failed.title, (500, None))
    return ApiError(
        status,
        f"{failed.title}: {failed.message}",
        type="invalid_request_error" if status < 500 else "server_error",
        code=code,
    )


def _unfinished() -> AnswerFailed:
    return AnswerFailed("", title="Server error", message="the answer ended without finishing")


class _Guard:
    """Checks every request before a route sees it.

    With a token, a request must carry it (``Authorization: Bearer TOKEN``). Without one the
    server only listens on loopback, and the Host header must name loopback too: a web page
    whose name was re-pointed at 127.0.0.1 (DNS rebinding) would otherwise read the answers.
    """

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self._problem(Headers(scope=scope))
            if problem is not None:
                await _error_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, headers: Headers) -> ApiError | None:
        if self.token is None:
            if not _names_loopback(headers.get("host", "localhost")):
                return ApiError(403, "this server answers only requests addressed to localhost")
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            return ApiError(
                401,
                "missing or wrong token: send Authorization: Bearer TOKEN (the api_key of "
                "OpenAI's clients) with the token the server was started with",
                code="invalid_api_key",
            )
        return None


def _names_loopback(host_header: str) -> bool:
    """Whether a Host header (``localhost:8765``, ``127.0.0.1``, ``[::1]:8765``) names loopback."""
    if host_header.startswith("["):
        name = host_header[1:].partition("]")[0]
    else:
        name = host_header.partition(":")[0]
    return is_loopback(name)


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(to_json(data, indent=None), status_code=status, media_type="application/json")


def _error_response(error: ApiError) -> Response:
    response = _json(error.body(), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return _error_response(error)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own: an unknown path (404) or method (405)."""
    assert isinstance(error, HTTPException)
    messages = {
        404: "no such endpoint; this server has GET /v1/models and POST /v1/chat/completions",
        405: f"{request.method} is not allowed on {request.url.path}",
    }
    message = messages.get(error.status_code, str(error.detail))
    return _error_response(ApiError(error.status_code, message))


async def _server_error(request: Request, error: Exception) -> Response:
    logger.error("request failed", exc_info=error)
    return _error_response(
        ApiError(500, "the server failed; its log has the details", type="server_error")
    )
