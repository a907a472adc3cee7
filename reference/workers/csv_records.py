"""What the csv module does not tell: the lines a record came from, and an unclosed quote.

csv.reader (strict=False) reads an unclosed double quote as a field that runs to the end of
the file (or to csv.field_size_limit()), swallowing every later row. The Simplicity reader
taps the lines each record consumes, so it can reject the row where the quote opens and read
the lines after it again as rows of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_FIELD_END = re.compile(r"[,\r\n]")


class LineTap:
    """Lines passed through to csv.reader; `taken` keeps those of the record being read."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.taken: list[str] = []
        self.exhausted = False  # the lines ran out: the record just read ended at end of file

    def __iter__(self) -> Iterator[str]:
        append = self.taken.append
        for line in self._lines:
            append(line)
            yield line
        self.exhausted = True


def ends_inside_quotes(text: str) -> bool:
    """Whether csv.reader (comma, doublequote, strict=False) is inside a quoted field at the end.

    A quote opens a quoted field only at the start of a field; inside a quoted field "" is a
    literal quote and a lone " closes it; elsewhere a quote is an ordinary character.
    """
    position, size = 0, len(text)
    while position < size:
        if text[position] == '"':  # at the start of a field: a quoted field
            while True:
                closing = text.find('"', position + 1)
                if closing < 0:
                    return True
                if text.startswith('"', closing + 1):  # "" inside quotes: a literal quote
                    position = closing + 1
                    continue
                position = closing + 1
                break
        if position < size and text[position] in ",\r\n":
            position += 1
            continue
        # An unquoted field (or the rest of one after its closing quote): up to its end.
        field_end = _FIELD_END.search(text, position)
        if field_end is None:
            return False
        position = field_end.end()
    return False
