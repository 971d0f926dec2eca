"""The Textual app. It only uses the headless core in `assistant`."""
