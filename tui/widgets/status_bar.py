"""The line under the chat: model, offload, context, speed, collection, background work."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from assistant.display import terminal_safe

if TYPE_CHECKING:
    from assistant.service import ModelStatus


def describe_model(status: ModelStatus | None) -> Text:
    """``MiniCPM-2B (MiniCPM) · CPU``, ``… · on http://gpu:8080/v1`` or why there is none yet."""
    if status is None:
        return Text("no model loaded", style="italic")
    kind = "MiniCPM" if status.is_minicpm else "offline demo model" if status.is_demo else "GGUF"
    if status.server_url is not None and not status.is_minicpm:
        kind = "model server"
    name = terminal_safe(status.name or Path(str(status.path)).name, one_line=True)
    text = Text()
    text.append(name, style="bold")
    text.append(f" ({kind})", style="bold red" if status.is_demo else "")
    if status.server_url is not None:
        text.append(f" · on {terminal_safe(status.server_url, one_line=True)}")
    elif status.n_gpu_layers:
        layers = f"{status.n_gpu_layers}/{status.total_layers}"
        text.append(f" · {status.backend} {layers} layers on GPU")
    else:
        text.append(" · CPU")
    return text


class StatusBar(Static):
    """Follows the app's model and activity; the chat screen sets speed and context use."""

    model_status: reactive[ModelStatus | None] = reactive(None)
    model_activity: reactive[str] = reactive("")
    ingest_activity: reactive[str] = reactive("")
    watch_activity: reactive[str] = reactive("")
    collection: reactive[str] = reactive("default")
    context_used: reactive[int] = reactive(0)
    tokens_per_s: reactive[float | None] = reactive(None)
    thinking: reactive[bool] = reactive(False)
    """The model is let to think before it answers (Ctrl+T)."""

    def on_mount(self) -> None:
        self.watch(self.app, "model_status", self._follow_model)
        self.watch(self.app, "model_activity", self._follow_model_activity)
        self.watch(self.app, "ingest_activity", self._follow_ingest_activity)
        self.watch(self.app, "watch_activity", self._follow_watch_activity)
        self.watch(self.app, "collection", self._follow_collection)

    def _follow_model(self, status: ModelStatus | None) -> None:
        self.model_status = status

    def _follow_model_activity(self, activity: str) -> None:
        self.model_activity = activity

    def _follow_ingest_activity(self, activity: str) -> None:
        self.ingest_activity = activity

    def _follow_watch_activity(self, activity: str) -> None:
        self.watch_activity = activity

    def _follow_collection(self, collection: str) -> None:
        self.collection = collection

    def render(self) -> Text:
        text = describe_model(self.model_status)
        if self.model_status is not None:
            text.append(f" · ctx {self.context_used}/{self.model_status.n_ctx}")
        if self.tokens_per_s is not None:
            text.append(f" · {self.tokens_per_s:.1f} tok/s")
        text.append(f" · docs: {self.collection}")
        if self.thinking:
            text.append(" · thinking on", style="bold")
        for activity in (self.model_activity, self.ingest_activity, self.watch_activity):
            if activity:
                text.append(f" · {activity}", style="bold")
        return text
