"""Headless core of minicpm-assistant: settings, conversations, the grounded chat pipeline, CLI."""
