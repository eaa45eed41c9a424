"""SQL text helpers that drivers of several engines share."""

from __future__ import annotations


def end_of_quoted(text: str, start: int, *, backslash_escapes: bool) -> int:
    """The index just after the quote that closes the one at *start* in *text*; ``len(text)`` if none does.

    The quote character is ``text[start]`` (``'``, ``"`` or a backtick); a doubled quote stands for
    one inside, and with *backslash_escapes* a backslash makes the character after it plain.
    """
    quote, index = text[start], start + 1
    while index < len(text):
        char = text[index]
        if backslash_escapes and char == "\\":
            index += 2
        elif char != quote:
            index += 1
        elif text.startswith(quote, index + 1):
            index += 2
        else:
            return index + 1
    return len(text)
