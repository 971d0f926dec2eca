"""HTTP to an OpenAI-compatible model server: JSON requests, SSE streams, errors naming the URL.

Every failure (refused, timed out, HTTP 4xx/5xx, a stream that is cut off or not JSON) becomes
one :class:`ModelServerError` whose message names the server's URL and what to do, so the chat
pipeline can end the turn with it and keep the conversation as it was. A stream can be cancelled
from another thread at any moment, also while the server is still reading the prompt: the
connection is closed, which is how these servers learn to stop generating.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from models.errors import GenerationError

CANCEL_POLL_S = 0.05
"""How often a stream's cancel watcher looks at the cancel event."""


class ModelServerError(GenerationError):
    title = "Model server error"


class StreamCancelled(Exception):
    """The stream was closed because its cancel event was set."""


class ServerClient:
    """One server, reached through one ``httpx`` connection pool."""

    def __init__(self, base_url: str, *, api_key: str | None, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.root_url = self.base_url.removesuffix("/v1")
        """Where non-OpenAI endpoints live (llama.cpp's ``/props``, ``/tokenize``)."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout_s = timeout_s
        self._http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        )

    def get(self, url: str) -> Any:
        """The JSON at ``url``; raises :class:`ModelServerError`."""
        return self._json(self._request("GET", url))

    def post(self, url: str, body: dict[str, Any]) -> Any:
        return self._json(self._request("POST", url, body))

    def try_get(self, url: str) -> Any | None:
        """The JSON at an optional endpoint, ``None`` where this server has no such endpoint."""
        return self._optional("GET", url)

    def try_post(self, url: str, body: dict[str, Any]) -> Any | None:
        return self._optional("POST", url, body)

    def stream(
        self, url: str, body: dict[str, Any], cancel: threading.Event | None
    ) -> Iterator[dict[str, Any]]:
        """The JSON events of a server-sent-event stream, up to ``data: [DONE]``.

        Raises :class:`StreamCancelled` when ``cancel`` is set (the connection is closed), and
        :class:`ModelServerError` when the stream fails or ends without ``[DONE]``.
        """
        try:
            with self._http.stream("POST", url, json=body) as response:
                if response.is_error:
                    response.read()
                    raise self._status_error(response)
                with _closed_on(cancel, response):
                    for line in response.iter_lines():
                        if cancel is not None and cancel.is_set():
                            raise StreamCancelled
                        data = _sse_data(line)
                        if data is None:
                            continue
                        if data == "[DONE]":
                            return
                        yield self._event(data)
        except httpx.HTTPError as error:
            if cancel is not None and cancel.is_set():
                raise StreamCancelled from None
            raise self._transport_error(error) from None
        if cancel is not None and cancel.is_set():
            raise StreamCancelled
        raise ModelServerError(
            f"the model server at {self.base_url} ended the answer without finishing it "
            "(no [DONE]); it may have crashed or restarted. Ask again."
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = self._http.request(method, url, json=body)
        except httpx.HTTPError as error:
            raise self._transport_error(error) from None
        if response.is_error:
            raise self._status_error(response)
        return response

    def _optional(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any | None:
        try:
            response = self._http.request(method, url, json=body)
        except httpx.HTTPError as error:
            raise self._transport_error(error) from None
        if response.status_code in (404, 405, 422, 501) or response.is_error:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ModelServerError(
                f"the model server at {self.base_url} answered {response.url.path} with "
                f"something that is not JSON ({_excerpt(response.text)}); is this URL an "
                "OpenAI-compatible endpoint (usually ending in /v1)?"
            ) from None

    def _event(self, data: str) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise ModelServerError(
                f"the model server at {self.base_url} sent a malformed stream event "
                f"({_excerpt(data)})"
            )
        if "error" in event:
            raise ModelServerError(
                f"the model server at {self.base_url} reported an error: "
                f"{_excerpt(_error_text(event['error']))}"
            )
        return event

    def _transport_error(self, error: httpx.HTTPError) -> ModelServerError:
        if isinstance(error, httpx.ConnectError):
            return ModelServerError(
                f"cannot reach the model server at {self.base_url} ({_excerpt(str(error))}); "
                "check that it is running and that [llm] base_url is right"
            )
        if isinstance(error, httpx.TimeoutException):
            return ModelServerError(
                f"the model server at {self.base_url} did not answer within "
                f"{self.timeout_s:g} s; it may be overloaded (raise [llm] timeout_s)"
            )
        return ModelServerError(
            f"the connection to the model server at {self.base_url} failed "
            f"({type(error).__name__}: {_excerpt(str(error))}); ask again"
        )

    def _status_error(self, response: httpx.Response) -> ModelServerError:
        status = response.status_code
        detail = _excerpt(_error_text(_body_of(response)))
        if status in (401, 403):
            hint = "set [llm] api_key to the server's key"
        elif status == 404:
            hint = "check [llm] base_url (it usually ends in /v1) and [llm] model"
        elif status >= 500:
            hint = "the server failed; see its log, then ask again"
        else:
            hint = "the server refused the request"
        return ModelServerError(
            f"the model server at {self.base_url} answered HTTP {status} ({detail}); {hint}"
        )


@contextmanager
def _closed_on(cancel: threading.Event | None, response: httpx.Response) -> Iterator[None]:
    """Close ``response`` from a watcher thread as soon as ``cancel`` is set.

    Reading a stream blocks until the server sends something, which can take long while it
    reads a long prompt; closing the connection unblocks the read and tells the server to stop.
    """
    if cancel is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(CANCEL_POLL_S):
                if not finished.is_set():
                    response.close()
                return

    watcher = threading.Thread(target=watch, name="model-server-cancel", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()


def _sse_data(line: str) -> str | None:
    """The payload of an SSE ``data:`` line; ``None`` for comments, pings and other fields."""
    if not line.startswith("data:"):
        return None
    return line[len("data:") :].strip()


def _body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _error_text(error: Any) -> str:
    """The message in the shapes servers use: ``{"error": {"message"}}``, ``{"detail"}``, text."""
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("detail") or inner)
        return str(error.get("detail") or inner)
    return str(error)


def _excerpt(text: str, limit: int = 200) -> str:
    """One short line of text that came from a server (it is shown to the user)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
