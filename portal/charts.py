"""Server-side SVG charts: bars with an optional comparison line, no JavaScript, no CDN.

Only SVG presentation attributes are used (no ``style``), so the strict CSP holds. Values
are Decimals; they are scaled to pixels here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 240
LEFT = 44
BOTTOM = 28
TOP = 12
BAR_COLOUR = "#0b5c8e"
CURRENT_COLOUR = "#e08a00"
COMPARE_COLOUR = "#a4262c"
GRID_COLOUR = "#d5dde5"


@dataclass(frozen=True)
class Bar:
    """One bar: its label under the axis, its value, and a tooltip."""

    label: str
    value: Decimal
    tip: str = ""
    highlight: bool = False


def nice_ceiling(value: Decimal) -> Decimal:
    """Return a round number (1, 2 or 5 times a power of ten) at or above ``value``."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (Decimal(1), Decimal(2), Decimal(5), Decimal(10)):
        candidate = step.scaleb(exponent)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exponent)  # pragma: no cover  (10 >= any mantissa)


def bar_chart(
    bars: Sequence[Bar],
    *,
    unit: str,
    title: str,
    compare: Sequence[Decimal | None] = (),
    compare_label: str = "",
) -> Markup:
    """An accessible SVG bar chart of ``bars``; ``compare`` draws a line over them."""
    if not bars:
        return Markup("")
    values = [b.value for b in bars] + [c for c in compare if c is not None]
    top = nice_ceiling(max(values))
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - TOP - BOTTOM
    slot = Decimal(plot_w) / len(bars)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    parts += _grid(top, unit, plot_w, plot_h)
    label_every = max(1, len(bars) // 12)
    for index, bar in enumerate(bars):
        parts.append(_bar(index, bar, slot, top, plot_h, unit))
        if index % label_every == 0:
            x = LEFT + slot * index + slot / 2
            parts.append(
                f'<text x="{_px(x)}" y="{HEIGHT - 10}" font-size="11" text-anchor="middle" '
                f'fill="#5a6b7b">{escape(bar.label)}</text>'
            )
    if compare:
        parts.append(_line(compare, slot, top, plot_h, compare_label))
    parts.append("</svg>")
    return Markup("".join(parts))


def _grid(top: Decimal, unit: str, plot_w: int, plot_h: int) -> list[str]:
    lines = []
    for step in range(5):
        value = top * step / 4
        y = TOP + plot_h - Decimal(plot_h) * step / 4
        lines.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_px(y)}" y2="{_px(y)}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{_px(y + 4)}" font-size="11" text-anchor="end" '
            f'fill="#5a6b7b">{_num(value)}</text>'
        )
    lines.append(f'<text x="4" y="{TOP + 4}" font-size="11" fill="#5a6b7b">{escape(unit)}</text>')
    return lines


def _bar(index: int, bar: Bar, slot: Decimal, top: Decimal, plot_h: int, unit: str) -> str:
    height = Decimal(plot_h) * bar.value / top if bar.value > 0 else Decimal(0)
    x = LEFT + slot * index + slot * Decimal("0.15")
    y = TOP + plot_h - height
    colour = CURRENT_COLOUR if bar.highlight else BAR_COLOUR
    tip = bar.tip or f"{bar.label}: {bar.value} {unit}"
    return (
        f'<rect x="{_px(x)}" y="{_px(y)}" width="{_px(slot * Decimal("0.7"))}" '
        f'height="{_px(height)}" rx="2" fill="{colour}"><title>{escape(tip)}</title></rect>'
    )


def _line(
    compare: Sequence[Decimal | None], slot: Decimal, top: Decimal, plot_h: int, label: str
) -> str:
    points = []
    for index, value in enumerate(compare):
        if value is None:
            continue
        x = LEFT + slot * index + slot / 2
        y = TOP + plot_h - Decimal(plot_h) * value / top
        points.append(f"{_px(x)},{_px(y)}")
    if not points:
        return ""
    return (
        f'<polyline points="{" ".join(points)}" fill="none" stroke="{COMPARE_COLOUR}" '
        f'stroke-width="2" stroke-dasharray="5 3"><title>{escape(label)}</title></polyline>'
    )


def _px(value: Decimal | int) -> str:
    return f"{Decimal(value).quantize(Decimal('0.1'))}"


def _num(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_CEILING).normalize())
