"""Numbers and text as people read them: the precision that matters, and Markdown that shows what it says.

A value keeps every digit where programs read it (``--json``, ``drift.json``, MLflow); where people
read it, a p-value of 4.467e-318 says "< 0.001" and a PSI of 0.41237 says "0.412". Exponent notation
never reaches a person: 2.52e+04 reads "25,200".
"""

from __future__ import annotations

import math
from typing import Final

#: Below this a p-value (or a statistic) reads "< 0.001": more digits say nothing a person acts on.
SMALLEST: Final = 0.001


def significant(value: float | None, digits: int = 3, smallest: float = SMALLEST) -> str:
    """A number with ``digits`` significant digits, never in exponent notation: 0.41237 → "0.412",
    0.2 → "0.2", 1234.5 → "1,230", None or NaN → "—". A statistic below ``smallest`` (0.001) reads
    "< 0.001"; a value that must read as itself (a bin edge) passes ``smallest=0``."""
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    if abs(value) < smallest:
        return f"< {smallest:g}" if value > 0 else f"> -{smallest:g}"
    rounded = float(f"{value:.{digits}g}")
    decimals = max(digits - 1 - math.floor(math.log10(abs(rounded))), 0)
    text = f"{rounded:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def p_value_text(p: float | None) -> str:
    """A p-value as people compare it with 0.05: "< 0.001", else three decimals ("0.034"); "—" when
    there is none (the test could not run: no rows present, or no reference)."""
    if p is None or math.isnan(p):
        return "—"
    return f"< {SMALLEST:g}" if p < SMALLEST else f"{p:.3f}"


def markdown_text(text: str) -> str:
    """Text as it must be in a Markdown table cell to read as written: ``<`` and ``>`` as entities
    (``<unseen>`` would be an HTML tag the renderer drops), ``|`` escaped (it would split the cell),
    newlines as spaces (they would end the row)."""
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("\r", " "), ("\n", " ")):
        text = text.replace(raw, escaped)
    return text
