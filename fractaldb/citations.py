"""Papers a dataset card cites: each family lists its own (``Family.papers``).

The FractalDB papers are the common ancestor of every formula-driven family in
this line of work, so several families cite them: they live here, below the
families, rather than in one family that the others would have to import.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Paper", "FRACTALDB", "FRACTALDB_IJCV"]


@dataclass(frozen=True)
class Paper:
    """One BibTeX entry: ``key`` (its citation key, ``-`` allowed), ``kind`` (``inproceedings``,
    ``article``, ...) and its fields as ``(name, value)`` pairs, in order."""

    key: str
    kind: str
    fields: tuple

    def bibtex(self) -> str:
        body = ",\n".join(f"  {k} = {{{v}}}" for k, v in self.fields)
        return f"@{self.kind}{{{self.key.replace('-', '_')},\n{body}\n}}"


_FRACTALDB_AUTHORS = ("Kataoka, Hirokatsu and Okayasu, Kazushige and Matsumoto, Asato and Yamagata, Eisuke and "
                      "Yamada, Ryosuke and Inoue, Nakamasa and Nakamura, Akio and Satoh, Yutaka")

FRACTALDB = Paper("fractaldb", "inproceedings", (
    ("title", "Pre-training without Natural Images"), ("author", _FRACTALDB_AUTHORS),
    ("booktitle", "Asian Conference on Computer Vision (ACCV)"), ("year", "2020")))

FRACTALDB_IJCV = Paper("fractaldb-ijcv", "article", (
    ("title", "Pre-training without Natural Images"), ("author", _FRACTALDB_AUTHORS),
    ("journal", "International Journal of Computer Vision (IJCV)"), ("year", "2022")))
