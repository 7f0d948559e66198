"""Small server-rendered SVG charts: nothing loaded from outside the server, no JavaScript.

Every chart has a ``<title>`` and an ``aria-label`` saying what it shows, for screen readers.

>>> svg = line_chart([[0.5, 0.7, None, 0.9]], names=["automation"], target=0.8)
>>> svg.startswith("<svg") and "polyline" in svg and "target" in svg
True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

COLORS = ("#2456c9", "#c2410c", "#15803d", "#7c3aed")
W, H, PAD = 1000, 170, 34


def _y(v: float, top: float) -> float:
    return H - PAD + 6 - (H - PAD) * (v / top if top > 0 else 0.0)


def _x(i: int, n: int) -> float:
    return PAD + (W - 2 * PAD) * (i / (n - 1) if n > 1 else 0.5)


def line_chart(
    series: Sequence[Sequence[float | None]],
    *,
    names: Sequence[str],
    band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    target: float | None = None,
    top: float = 1.0,
    title: str = "",
    percent: bool = True,
) -> Markup:
    """Lines (one per series, gaps where a value is None) over equally spaced windows, an
    optional interval band around the first series and a dashed target line."""
    n = max((len(s) for s in series), default=0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H + 10}" '
             f'role="img" aria-label="{escape(title or ", ".join(names))}" class="chart">',
             f"<title>{escape(title or ', '.join(names))}</title>"]
    for frac in (0.0, 0.5, 1.0):
        y = _y(top * frac, top)
        label = f"{100 * top * frac:.0f}%" if percent else f"{top * frac:g}"
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#dde1e7"/>'
                     f'<text x="2" y="{y + 4:.1f}" font-size="11" fill="#5b6577">{label}</text>')
    if band is not None and n:
        lo, hi = band
        pts = [(i, h, v) for i, (h, v) in enumerate(zip(hi, lo, strict=False))
               if h is not None and v is not None]
        if pts:
            upper = " ".join(f"{_x(i, n):.1f},{_y(min(h, top), top):.1f}" for i, h, _ in pts)
            lower = " ".join(f"{_x(i, n):.1f},{_y(min(v, top), top):.1f}"
                             for i, _, v in reversed(pts))
            parts.append(f'<polygon points="{upper} {lower}" fill="{COLORS[0]}" '
                         'fill-opacity="0.15"/>')
    if target is not None:
        y = _y(min(target, top), top)
        parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#a4161a" stroke-dasharray="5 4" class="target"/>'
                     f'<text x="{W - PAD - 60}" y="{y - 4:.1f}" font-size="11" '
                     'fill="#a4161a">target</text>')
    for k, values in enumerate(series):
        color = COLORS[k % len(COLORS)]
        run: list[str] = []
        for i, v in enumerate([*values, None]):
            if v is None:
                if len(run) > 1:
                    parts.append(f'<polyline points="{" ".join(run)}" fill="none" '
                                 f'stroke="{color}" stroke-width="2"/>')
                elif run:
                    cx, cy = run[0].split(",")
                    parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
                run = []
            else:
                run.append(f"{_x(i, n):.1f},{_y(min(v, top), top):.1f}")
        parts.append(f'<text x="{PAD + 200 * k}" y="{H + 8}" font-size="12" '
                     f'fill="{color}">■ {escape(names[k])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def interval_bar(estimate: float | None, low: float | None, high: float | None,
                 target: float | None, *, top: float = 0.2, title: str = "") -> Markup:
    """One estimate with its interval on a horizontal scale [0, top], and the target."""
    w, h, pad = 360, 44, 10

    def x(v: float) -> float:
        return pad + (w - 2 * pad) * min(max(v / top, 0.0), 1.0)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
             f'aria-label="{escape(title)}" class="chart interval">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{pad}" x2="{w - pad}" y1="22" y2="22" stroke="#dde1e7" '
             'stroke-width="6"/>']
    if low is not None and high is not None:
        parts.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="22" y2="22" '
                     f'stroke="{COLORS[0]}" stroke-width="6" stroke-opacity="0.45"/>')
    if estimate is not None:
        parts.append(f'<circle cx="{x(estimate):.1f}" cy="22" r="6" fill="{COLORS[0]}"/>')
    if target is not None:
        parts.append(f'<line x1="{x(target):.1f}" x2="{x(target):.1f}" y1="8" y2="36" '
                     'stroke="#a4161a" stroke-width="2" class="target"/>')
    parts.append(f'<text x="{pad}" y="43" font-size="10" fill="#5b6577">0%</text>'
                 f'<text x="{w - pad - 28}" y="43" font-size="10" fill="#5b6577">'
                 f"{100 * top:.0f}%</text></svg>")
    return Markup("".join(parts))
