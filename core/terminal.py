"""Text from models, datasets and servers, made safe to print on a terminal.

Generated text is data: a completion containing ``\\x1b]0;...\\x07`` must not retitle the
window, clear the screen, move the cursor or hide the line above when ``tune review`` shows it.
:func:`printable` removes escape sequences (CSI, OSC, and the rest) and every other control
character except newline and tab, plus Unicode bidirectional overrides (which can make a line
read differently from what it holds). Every terminal view of such text goes through it:
``tune review``, ``tune report`` and the run summary, ``tune presets list``, ``tune try`` (when
its output is a terminal) and the ``error:`` line the CLI prints.
"""

from __future__ import annotations

import re
from typing import TextIO

_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL or ST (window title, hyperlinks)
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor moves, clears)
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # other C0 and C1 controls (CR included), DEL
    r"|[\u202a-\u202e\u2066-\u2069]"  # bidirectional embeddings, overrides and isolates
)


def printable(text: str) -> str:
    """``text`` without terminal control sequences or control characters (newlines and tabs
    stay)."""
    return _ESCAPES.sub("", text)


def for_stream(text: str, stream: TextIO) -> str:
    """``text`` made :func:`printable` when ``stream`` is a terminal, unchanged otherwise (so
    ``tune try ... > file`` keeps the model's exact answer)."""
    isatty = getattr(stream, "isatty", None)
    return printable(text) if isatty is not None and isatty() else text
