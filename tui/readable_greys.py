"""NO_COLOR's greys, with coloured words still readable.

With NO_COLOR, Textual shows every colour as the grey of its brightness. Red and magenta are dark:
on the dark screen they became #3b3b3b on #1c1c1c (a contrast of 1.5 to 1), so the focus list's
"overdue 6 days" and "slow 36 days", the review's overdue prospects and losses, and every negative
EV were all but invisible, and they are what a colour was there to make stand out. A text given a
colour (not a grey, which the app chooses to mute a text) is kept at least as readable as body
text against its background (WCAG's 4.5 to 1); its weight (bold) and words still say the rest.
"""

from __future__ import annotations

from functools import lru_cache

from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import Monochrome, monochrome_style

#: WCAG's contrast for body text.
MIN_CONTRAST = 4.5


def _luminance(grey: int) -> float:
    c = grey / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def _grey_of(luminance: float) -> int:
    c = luminance * 12.92 if luminance <= 0.0031308 else 1.055 * luminance ** (1 / 2.4) - 0.055
    return max(0, min(255, round(c * 255)))


def readable_grey(grey: int, back: int) -> int:
    """`grey` itself when it reads on `back` (both 0-255), else the grey nearest it that does."""
    fg, bg = _luminance(grey), _luminance(back)
    if (max(fg, bg) + 0.05) / (min(fg, bg) + 0.05) >= MIN_CONTRAST:
        return grey
    lighter = MIN_CONTRAST * (bg + 0.05) - 0.05  # the darkest grey that reads on `back` from above
    darker = (bg + 0.05) / MIN_CONTRAST - 0.05  # the lightest one that reads from below
    if lighter <= 1 and (grey >= back or darker < 0):
        return min(255, _grey_of(lighter) + 1)
    return max(0, _grey_of(max(darker, 0.0)) - 1) if darker >= 0 else 255


@lru_cache(maxsize=1024)
def _readable_style(style: Style, background: Color) -> Style:
    grey = monochrome_style(style)
    colour = style.color
    if colour is None or grey.color is None or style.reverse:
        return grey
    r, g, b = colour.get_truecolor()
    if r == g == b:  # a grey: the app's own muted text, kept as it is
        return grey
    back = grey.bgcolor.get_truecolor()[0] if grey.bgcolor is not None else background.monochrome.r
    shade = readable_grey(grey.color.get_truecolor()[0], back)
    if shade == grey.color.get_truecolor()[0]:
        return grey
    return grey + Style(color=RichColor.from_rgb(shade, shade, shade))


class ReadableMonochrome(Monochrome):
    """Textual's Monochrome filter (NO_COLOR), with coloured text kept readable on its background."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            Segment(text, None if style is None else _readable_style(style, background), None)
            for text, style, _ in segments
        ]
