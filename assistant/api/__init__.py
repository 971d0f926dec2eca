"""``minicpm-assistant serve``: the grounded chat as an OpenAI-compatible HTTP API on this machine.

Editors and other tools that speak OpenAI's chat API get answers from the user's library through
the same pipeline as ``ask`` and ``chat`` (:meth:`assistant.service.AssistantService.ask`), with
the passages in an extra ``sources`` field. Modules: ``errors`` (OpenAI's error shape),
``chat_request`` (a request body into a turn), ``chat_response`` (events into completions and
stream chunks), ``turns`` (as many at once as the model answers), ``app`` (routes and guards),
``server`` (where it may listen, and uvicorn).
"""
