"""Widgets of the app: they render and report what the user did; the core does the thinking."""
