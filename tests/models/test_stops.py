"""Stop strings: text that may begin one is held back until it is known not to."""

from __future__ import annotations

from models.stops import StopFilter


def test_stop_filter_holds_back_partial_stop_strings() -> None:
    stops = StopFilter(["<用户>", "\n\n"])
    assert stops.feed("Paris") == ("Paris", False)
    assert stops.feed(" is<用") == (" is", False)  # "<用" may start "<用户>": held back
    assert stops.feed("x") == ("<用x", False)  # it did not
    assert stops.feed("\n") == ("", False)
    assert stops.feed("\nQuestion") == ("", True)
    assert stops.flush() == ""
