"""``hf``: the dataset card (``README.md``, Hugging Face format) and its contact sheet."""

from __future__ import annotations

from ..card import write_card
from .registry import Index, register_index


@register_index
class CardIndex(Index):
    name = "hf"
    help = "Hugging Face datasets (the README.md dataset card)"
    at_generate = True
    is_card = True

    def write(self):
        self.written += write_card(self.store, self.manifest, self.dataset)
