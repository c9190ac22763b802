"""``hf``: the dataset card (``README.md``, Hugging Face format) and its contact sheet.

A ``README.md`` that is not a fractaldb card (no front matter tagged ``fractaldb``: a
publisher's own) is never replaced: ``fractaldb index DIR --for hf`` refuses it with one
line before anything is written, and ``generate`` leaves it (and the sheet) as they are,
with a note.  A card fractaldb wrote, edited or not, is written again.
"""

from __future__ import annotations

import logging

from ..card import is_card, write_card
from ..errors import InputError, OutputError
from ..keys import CARD
from .registry import Index, register_index

log = logging.getLogger("fractaldb")

#: Most of an existing README.md read to tell whether it is a card fractaldb wrote.
_HEAD = 1 << 20


@register_index
class CardIndex(Index):
    name = "hf"
    help = "Hugging Face datasets (the README.md dataset card)"
    files = (CARD,)
    at_generate = True
    is_card = True

    def foreign(self) -> bool:
        """Whether the folder holds a README.md that fractaldb did not write."""
        if not self.store.exists(CARD):
            return False
        try:
            head = self.store.read(CARD, max_bytes=1 << 26)[:_HEAD]
        except InputError:
            return True  # a folder, a FIFO, a huge file: not ours either
        return not is_card(head)

    def preflight(self):
        if self.foreign():
            raise OutputError(f"{self.store.path(CARD)} is not a dataset card fractaldb wrote (its front matter is "
                              "not tagged fractaldb); fractaldb will not replace it: move it away to have the card "
                              "written")

    def write(self):
        if self.foreign():
            if self.asked:
                self.preflight()
            log.warning("kept %s: it is not a card fractaldb wrote (move it away and run 'fractaldb index %s "
                        "--for hf' to have one)", self.store.path(CARD), self.store.url)
            return
        self.written += write_card(self.store, self.manifest, self.dataset)
