"""The reports' charts, drawn on the server as SVG: no script, no CDN, the same in print and on screen.

Each chart is an <svg role="img"> with a <title> and a <desc> that say what it shows in the reader's
language, text the browser draws with the page's fonts (Thai through the page's font stack), and a
legend. Colours are the Okabe-Ito palette, told apart by people with any common colour blindness; the
bars also carry their values in <title> tooltips, and each chart's numbers are a CSV download and a
table on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

# Okabe-Ito: completed, cancelled, no-show, open, then the others.
PALETTE = ("#0072B2", "#E69F00", "#D55E00", "#999999", "#009E73", "#CC79A7", "#56B4E9", "#F0E442")
INK = "#212529"
GRID = "#dee2e6"
FONT = 13


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float]
    colour: str


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = FONT, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{INK}"{extra}>'
        f"{escape(text)}</text>"
    )


def _svg(chart_id: str, width: int, height: int, title: str, desc: str, body: list[str]) -> SafeString:
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="report-chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def nice_ceiling(value: float) -> float:
    """The axis maximum: 1, 2, 2.5 or 5 times a power of ten, at least `value` (1 for nothing)."""
    if value <= 0:
        return 1
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def integer_ceiling(value: float) -> int:
    """The axis maximum of a count: four whole steps at least (0, 1, 2, 3, 4), never quarters of one."""
    top = max(4, int(-(-nice_ceiling(value) // 1)))
    return top + (-top) % 4


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    out, at = [], x
    for s in series:
        out.append(f'<rect x="{at:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{s.colour}"/>')
        out.append(_text(at + 16, y, s.label))
        at += 28 + 7.5 * len(s.label)
    return out


def stacked_columns(
    chart_id: str,
    *,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    tick_every: int = 1,
    unit: str = "",
) -> SafeString:
    """Vertical stacked bars of counts, one per label (a day), the series stacked bottom up."""
    left, right, top, bottom = 48, 12, 34, 44
    plot_w = 1000
    width, height = left + plot_w + right, 320
    plot_h = height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    ymax = integer_ceiling(max(totals, default=0))
    step = plot_w / max(1, len(labels))
    bar = max(1.0, min(48.0, step * 0.8))
    body = _legend(series, left, 18)
    for tick in range(5):
        value = ymax * tick / 4
        y = top + plot_h - plot_h * tick / 4
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, f"{value:g}", anchor="end", size=11))
    for i, label in enumerate(labels):
        x = left + i * step + (step - bar) / 2
        y = top + plot_h
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / ymax
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{s.colour}">'
                f"<title>{escape(label)}: {escape(s.label)} {value:g}{escape(unit)}</title></rect>"
            )
        if i % tick_every == 0:
            body.append(
                _text(left + i * step + step / 2, height - bottom + 16, label, anchor="middle", size=11)
            )
    body.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{INK}"/>'
    )
    return _svg(chart_id, width, height, title, desc, body)


def horizontal_bars(
    chart_id: str,
    *,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    stacked: bool = False,
    unit: str = "",
    label_width: int = 150,
    counts: bool = False,
) -> SafeString:
    """One row per label; the series side by side (grouped) or end to end (stacked), values written out."""
    left, right, top = label_width, 90, 34
    row = 22 * (1 if stacked else len(series)) + 12
    plot_w = 520
    width, height = left + plot_w + right, top + row * max(1, len(labels)) + 24
    if stacked:
        biggest = max((sum(s.values[i] for s in series) for i in range(len(labels))), default=0)
    else:
        biggest = max((v for s in series for v in s.values), default=0)
    xmax = integer_ceiling(biggest) if counts else nice_ceiling(biggest)
    body = _legend(series, left, 18)
    for tick in range(5):
        x = left + plot_w * tick / 4
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - 24}" stroke="{GRID}"/>')
        body.append(_text(x, height - 8, f"{xmax * tick / 4:g}{unit}", anchor="middle", size=11))
    for i, label in enumerate(labels):
        y0 = top + i * row + 6
        body.append(_text(left - 8, y0 + row / 2 - 2, label, anchor="end"))
        x = left
        for j, s in enumerate(series):
            value = s.values[i]
            w = plot_w * value / xmax
            y = y0 if stacked else y0 + 22 * j
            bar_x = x if stacked else left
            body.append(
                f'<rect x="{bar_x:.1f}" y="{y:.1f}" width="{w:.1f}" height="18" fill="{s.colour}">'
                f"<title>{escape(label)}: {escape(s.label)} {value:g}{escape(unit)}</title></rect>"
            )
            if not stacked:
                body.append(_text(left + w + 4, y + 14, f"{value:g}{unit}", size=11))
            x += w if stacked else 0
        if stacked:
            total = sum(s.values[i] for s in series)
            body.append(_text(x + 4, y0 + 14, f"{total:g}{unit}", size=11))
    return _svg(chart_id, width, height, title, desc, body)


def _cell_colour(share: float) -> tuple[str, str]:
    """Fill and text colour of a heatmap cell: white to dark blue as the share goes 0 to 100 %."""
    share = max(0.0, min(1.0, share))
    low, high = (247, 251, 255), (8, 48, 107)
    rgb = tuple(round(a + (b - a) * share) for a, b in zip(low, high, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#ffffff" if share > 0.55 else INK)


def heatmap(
    chart_id: str,
    *,
    title: str,
    desc: str,
    rows: Sequence[str],
    columns: Sequence[str],
    shares: Sequence[Sequence[float | None]],
    closed_label: str,
    legend_label: str,
    outside: Sequence[Sequence[int]] | None = None,
    outside_label: str = "",
) -> SafeString:
    """A grid of shares (0-1, or None where the rooms were closed), each cell with its percentage.

    `outside`: per cell, minutes booked while closed, written in the hatched cell (`outside_label` is
    their tooltip's format, with %(minutes)s).
    """
    left, top, cell_w, cell_h = 90, 46, 44, 30
    width = left + cell_w * len(columns) + 12
    height = top + cell_h * len(rows) + 40
    body = [_text(left, 18, legend_label, size=12)]
    scale = left + 24 + 7 * len(legend_label)
    body.append(_text(scale - 4, 18, "0 %", anchor="end", size=11))
    for n in range(11):
        fill, _ = _cell_colour(n / 10)
        body.append(
            f'<rect x="{scale + n * 18}" y="8" width="18" height="12" fill="{fill}" stroke="{GRID}"/>'
        )
    body.append(_text(scale + 11 * 18 + 6, 18, "100 %", size=11))
    body.append(
        f'<pattern id="{chart_id}-closed" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f8f9fa"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="#adb5bd" stroke-width="2"/></pattern>'
    )
    for j, column in enumerate(columns):
        body.append(_text(left + j * cell_w + cell_w / 2, top - 8, column, anchor="middle", size=11))
    for i, row in enumerate(rows):
        y = top + i * cell_h
        body.append(_text(left - 8, y + cell_h / 2 + 4, row, anchor="end"))
        for j, column in enumerate(columns):
            x = left + j * cell_w
            share = shares[i][j]
            if share is None:
                minutes = outside[i][j] if outside is not None else 0
                said = closed_label + (", " + outside_label % {"minutes": minutes} if minutes else "")
                body.append(
                    f'<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" fill="url(#{chart_id}-closed)" '
                    f'stroke="#ffffff"><title>{escape(row)} {escape(column)}: {escape(said)}</title></rect>'
                )
                if minutes:
                    body.append(
                        f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" font-size="11" '
                        f'text-anchor="middle" fill="{INK}" font-weight="bold">{minutes}′</text>'
                    )
                continue
            fill, ink = _cell_colour(share)
            percent = f"{share * 100:.0f}%"
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" fill="{fill}" stroke="#ffffff">'
                f"<title>{escape(row)} {escape(column)}: {percent}</title></rect>"
            )
            body.append(
                f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" font-size="11" '
                f'text-anchor="middle" fill="{ink}">{percent}</text>'
            )
    body.append(
        f'<rect x="{left}" y="{height - 26}" width="18" height="12" fill="url(#{chart_id}-closed)" stroke="{GRID}"/>'
    )
    body.append(_text(left + 24, height - 16, closed_label, size=11))
    return _svg(chart_id, width, height, title, desc, body)
