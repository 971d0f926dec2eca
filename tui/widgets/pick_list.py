"""An option list that is ready for Enter as soon as it has focus."""

from __future__ import annotations

from textual.widgets import OptionList


class PickList(OptionList):
    """Highlights the first enabled option on focus when none is, so Enter acts without a Down."""

    def on_focus(self) -> None:
        if self.highlighted is None:
            self.action_first()
