"""Screens of the app: chat, library and models are modes; help, first run and dialogs are modal."""
