"""Inline SVG charts for the finance reports: drawn here, no script, no network at view time.

Each function takes values already read from the marts and returns one `<svg class="chart">`
element as text. The values are only placed (scaled to pixels) and labelled, never combined into
new figures; a waterfall's running position is where a bar is drawn, its label is the mart's
number. Every chart carries `data-chart` (its name) and every mark `data-value` (the mart value
it draws), so a test can check a rendered page for its charts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

Fmt = Callable[[int], str]

PALETTE = ("#2f6db5", "#e08a1e", "#3a9a5b", "#b8434a", "#7a5cb0", "#5f7480")
POSITIVE, NEGATIVE, TOTAL = "#3a9a5b", "#b8434a", "#2f6db5"
INK, MUTED, GRID = "#1f2933", "#66717d", "#d9dee3"


def _a(value: object) -> str:
    return escape(str(value), quote=True)


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11,
          fill: str = INK, weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{fill}" font-weight="{weight}">{escape(text)}</text>')


def _svg(name: str, title: str, width: int, height: int, body: list[str]) -> str:
    head = (f'<svg class="chart" data-chart="{_a(name)}" xmlns="http://www.w3.org/2000/svg" '
            f'role="img" aria-label="{_a(title)}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" font-family="Helvetica, Arial, sans-serif">')
    return head + f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"


def _scale(values: Sequence[int | None]) -> tuple[int, int]:
    """The value range a chart spans: always includes 0."""
    present = [v for v in values if v is not None]
    low = min([0, *present])
    high = max([0, *present])
    if low == high:
        high = low + 1
    return low, high


def _empty(name: str, title: str, width: int, message: str) -> str:
    return _svg(name, title, width, 60, [
        _text(8, 18, title, weight="bold", size=12),
        _text(8, 42, message, fill=MUTED),
    ])


def grouped_bars(name: str, title: str, groups: Sequence[str],
                 series: Sequence[tuple[str, Sequence[int | None]]], fmt: Fmt,
                 width: int = 420, height: int = 220) -> str:
    """Vertical bars: one group per label, one bar per series; negative values go below 0."""
    values = [v for _, vs in series for v in vs]
    if not groups or all(v is None for v in values):
        return _empty(name, title, width, "no data")
    low, high = _scale(values)
    top, bottom, left, right = 46, 36 if low < 0 else 24, 8, 8
    plot_h = height - top - bottom
    y0 = top + plot_h * high / (high - low)
    slot = (width - left - right) / len(groups)
    bar_w = min(38.0, (slot - 12) / max(len(series), 1))
    body = [_text(left, 16, title, weight="bold", size=12)]
    # legend
    x = left
    for i, (label, _) in enumerate(series):
        body.append(f'<rect x="{x:.1f}" y="24" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        body.append(_text(x + 14, 33, label, size=10, fill=MUTED))
        x += 18 + 6.5 * len(label) + 10
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{y0:.1f}" y2="{y0:.1f}" stroke="{GRID}"/>')
    for g, group in enumerate(groups):
        gx = left + g * slot + (slot - bar_w * len(series)) / 2
        for s, (label, vs) in enumerate(series):
            v = vs[g]
            bx = gx + s * bar_w
            if v is None:
                body.append(_text(bx + bar_w / 2, y0 - 4, "n/a", anchor="middle", size=9, fill=MUTED))
                continue
            h = plot_h * abs(v) / (high - low)
            by = y0 - h if v >= 0 else y0
            body.append(
                f'<rect class="mark" data-value="{v}" x="{bx + 1:.1f}" y="{by:.1f}" '
                f'width="{bar_w - 2:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(f"{group} {label}: {fmt(v)}")}</title></rect>')
            ly = by - 3 if v >= 0 else by + h + 10
            body.append(_text(bx + bar_w / 2, ly, fmt(v), anchor="middle", size=9,
                              fill=MUTED if v >= 0 else NEGATIVE))
        body.append(_text(left + g * slot + slot / 2, height - 10, group, anchor="middle", size=10))
    return _svg(name, title, width, height, body)


def hbars(name: str, title: str, labels: Sequence[str], values: Sequence[int], fmt: Fmt,
          width: int = 420, label_width: int = 130) -> str:
    """Horizontal bars, one per label, in the order given; negative values extend left of 0."""
    if not labels:
        return _empty(name, title, width, "nothing to show")
    row = 20
    top = 26
    height = top + row * len(labels) + 8
    low, high = _scale(values)
    value_width = 90
    plot_w = width - label_width - value_width - 8
    x0 = label_width + plot_w * (-low) / (high - low)
    body = [_text(4, 16, title, weight="bold", size=12)]
    body.append(f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{top - 2}" y2="{height - 6}" stroke="{GRID}"/>')
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        w = plot_w * abs(v) / (high - low)
        x = x0 if v >= 0 else x0 - w
        color = TOTAL if v >= 0 else NEGATIVE
        body.append(_text(label_width - 6, y + 13, label, anchor="end", size=10))
        body.append(f'<rect class="mark" data-value="{v}" x="{x:.1f}" y="{y + 3}" width="{max(w, 0.5):.1f}" '
                    f'height="{row - 6}" fill="{color}"><title>{escape(f"{label}: {fmt(v)}")}</title></rect>')
        body.append(_text(label_width + plot_w + 6, y + 13, fmt(v), size=10, fill=MUTED))
    return _svg(name, title, width, height, body)


def columns(name: str, title: str, labels: Sequence[str], values: Sequence[int], fmt: Fmt,
            highlight_last: bool = True, width: int = 300, height: int = 120) -> str:
    """A small column chart of a series (e.g. 14 days of usage); the last column highlighted."""
    if not labels:
        return _empty(name, title, width, "no data")
    top, bottom, left, right = 30, 22, 4, 4
    plot_h = height - top - bottom
    low, high = _scale(values)
    y0 = top + plot_h * high / (high - low)
    slot = (width - left - right) / len(labels)
    body = [_text(left, 14, title, weight="bold", size=11),
            _text(width - right, 14, f"max {fmt(max(values))}", anchor="end", size=9, fill=MUTED)]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * abs(v) / (high - low)
        y = y0 - h if v >= 0 else y0
        last = highlight_last and i == len(labels) - 1
        color = PALETTE[1] if last else PALETTE[0]
        body.append(f'<rect class="mark" data-value="{v}" x="{left + i * slot + 1:.1f}" y="{y:.1f}" '
                    f'width="{slot - 2:.1f}" height="{max(h, 0.5):.1f}" fill="{color}">'
                    f'<title>{escape(f"{label}: {fmt(v)}")}</title></rect>')
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{y0:.1f}" y2="{y0:.1f}" stroke="{GRID}"/>')
    body.append(_text(left, height - 6, labels[0], size=9, fill=MUTED))
    body.append(_text(width - right, height - 6, labels[-1], anchor="end", size=9, fill=MUTED))
    return _svg(name, title, width, height, body)


def waterfall(name: str, title: str, steps: Sequence[tuple[str, int, str]], fmt: Fmt,
              width: int = 470, height: int = 200) -> str:
    """A bridge: steps are (label, value, kind) with kind `total` (a level drawn from 0, e.g.
    opening and closing) or `delta` (a movement drawn from where the previous step ended)."""
    if not steps:
        return _empty(name, title, width, "no data")
    if all(value == 0 for _, value, _ in steps):
        return _empty(name, title, width, "nothing: every step is 0")
    # where each bar starts and ends, for drawing only
    spans: list[tuple[int, int]] = []
    level = 0
    for _, value, kind in steps:
        if kind == "total":
            spans.append((0, value))
            level = value
        else:
            spans.append((level, level + value))
            level += value
    low, high = _scale([v for span in spans for v in span])
    top, bottom, left, right = 40, 34, 8, 8
    plot_h = height - top - bottom
    slot = (width - left - right) / len(steps)

    def y(v: int) -> float:
        return top + plot_h * (high - v) / (high - low)

    body = [_text(left, 16, title, weight="bold", size=12),
            f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{GRID}"/>']
    for i, ((label, value, kind), (a, b)) in enumerate(zip(steps, spans, strict=True)):
        x = left + i * slot + 4
        color = TOTAL if kind == "total" else (POSITIVE if value >= 0 else NEGATIVE)
        y_top, y_bottom = y(max(a, b)), y(min(a, b))
        body.append(f'<rect class="mark" data-value="{value}" x="{x:.1f}" y="{y_top:.1f}" '
                    f'width="{slot - 8:.1f}" height="{max(y_bottom - y_top, 0.5):.1f}" fill="{color}">'
                    f'<title>{escape(f"{label}: {fmt(value)}")}</title></rect>')
        body.append(_text(x + (slot - 8) / 2, y_top - 3, fmt(value), anchor="middle", size=9, fill=MUTED))
        body.append(_text(x + (slot - 8) / 2, height - 20, label, anchor="middle", size=9))
    return _svg(name, title, width, height, body)


def stacked_share(name: str, title: str, segments: Sequence[tuple[str, int]], fmt: Fmt,
                  width: int = 420) -> str:
    """One horizontal bar split into segments proportional to their (non-negative) values, with a
    legend: e.g. a check's compared rows by status."""
    shown = [(label, v) for label, v in segments if v > 0]
    if not shown:
        return _empty(name, title, width, "nothing to show")
    total = sum(v for _, v in shown)  # the bar's length in pixels, not a reported figure
    body = [_text(4, 16, title, weight="bold", size=12)]
    x = 4.0
    plot_w = width - 8
    for i, (label, v) in enumerate(shown):
        w = plot_w * v / total
        body.append(f'<rect class="mark" data-value="{v}" x="{x:.1f}" y="24" width="{w:.1f}" height="16" '
                    f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(f"{label}: {fmt(v)}")}</title></rect>')
        x += w
    lx, ly = 4.0, 56
    for i, (label, v) in enumerate(shown):
        text = f"{label} {fmt(v)}"
        if lx + 16 + 6 * len(text) > width:
            lx, ly = 4.0, ly + 16
        body.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        body.append(_text(lx + 14, ly, text, size=10, fill=MUTED))
        lx += 24 + 6 * len(text)
    return _svg(name, title, width, ly + 8, body)
