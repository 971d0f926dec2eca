"""Errors of the model side, each with a short title and a message the user can act on."""

from __future__ import annotations


class ModelError(Exception):
    """Base of every model-side error the user should see as one clear line."""

    title = "Model error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotFoundError(ModelError):
    title = "Model not found"


class ModelLoadError(ModelError):
    title = "Model failed to load"


class ModelDownloadError(ModelError):
    title = "Download failed"


class GenerationError(ModelError):
    title = "Generation failed"
