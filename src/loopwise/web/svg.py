"""Small server-rendered SVG charts: nothing loaded from outside the server, no JavaScript.

Every chart has a ``<title>`` and an ``aria-label`` saying what it shows, for screen readers.

>>> svg = line_chart([[0.5, 0.7, None, 0.9]], names=["automation"], target=0.8)
>>> svg.startswith("<svg") and "polyline" in svg and "target" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
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


Rate = tuple[float | None, float | None, float | None, str | None]
"""One rate of one group: (estimate, low, high, why it is undefined); None when undefined."""

GREY = "#9aa3b2"
INK = "#1d2330"
MUTED = "#5b6577"


def _pct(v: float | None) -> str:
    return "undefined" if v is None else f"{100 * v:.1f}%"


def _open(width: float, height: float, title: str, cls: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" '
        f'role="img" aria-label="{escape(title)}" class="chart {cls}">',
        f"<title>{escape(title)}</title>",
    ]


def dot_intervals(
    groups: Sequence[str],
    panels: Sequence[tuple[str, Sequence[Rate]]],
    *,
    greyed: Collection[str] = (),
    notes: Mapping[str, str] | None = None,
    sizes: Mapping[str, float] | None = None,
    title: str,
) -> Markup:
    """Each group's rates as dots with their intervals on [0, 100%], one panel per rate
    (``panels``: name and one :data:`Rate` per group). Groups in ``greyed`` (too few rows
    to judge) are grey and labelled "insufficient" (``notes`` say why); an undefined rate
    reads "undefined", never 0; ``sizes`` (rows per group) are shown next to the names.

    >>> svg = dot_intervals(["f", "m"], [("accuracy", [(0.9, 0.8, 0.95, None),
    ...                     (None, None, None, "no labelled rows")])], greyed=["m"], title="t")
    >>> svg.count("<circle"), "undefined" in svg, "insufficient" in svg
    (1, True, True)
    """
    notes, sizes = notes or {}, sizes or {}
    width, lw, row, head, right = 1000, 170, 26, 24, 60
    pw = (width - lw) / max(len(panels), 1)
    bottom = head + row * len(groups)
    parts = _open(width, bottom + 20, title, "dots")
    for i, group in enumerate(groups):
        y = head + row * i + row / 2 + 4
        grey = group in greyed
        tip = f"{group}: too few rows to judge ({notes.get(group, '')})" if grey else group
        parts.append(
            f'<g class="group{" insufficient" if grey else ""}" data-group="{escape(group)}">'
            f"<title>{escape(tip)}</title>"
            f'<text x="2" y="{y:.1f}" font-size="12" fill="{GREY if grey else INK}">'
            f"{escape(group[:22])}"
            + (
                f' <tspan fill="{MUTED}" font-size="10">n={sizes[group]:g}</tspan>'
                if group in sizes
                else ""
            )
            + (' <tspan font-size="10" font-style="italic">insufficient</tspan>' if grey else "")
            + "</text></g>"
        )
    for k, (name, rates) in enumerate(panels):
        x0, x1 = lw + k * pw + 8, lw + (k + 1) * pw - right

        def x(v: float, x0: float = x0, x1: float = x1) -> float:
            return x0 + (x1 - x0) * min(max(v, 0.0), 1.0)

        label = name.replace("_", " ")
        parts.append(
            f'<text x="{x0:.1f}" y="15" font-size="13" font-weight="600" fill="{INK}">'
            f"{escape(label)}</text>"
        )
        for frac in (0.0, 0.5, 1.0):
            parts.append(
                f'<line x1="{x(frac):.1f}" x2="{x(frac):.1f}" y1="{head}" y2="{bottom}" '
                f'stroke="#dde1e7"/><text x="{x(frac) - 10:.1f}" y="{bottom + 14}" '
                f'font-size="11" fill="{MUTED}">{100 * frac:.0f}%</text>'
            )
        for i, (group, (est, low, high, reason)) in enumerate(zip(groups, rates, strict=True)):
            y = head + row * i + row / 2
            color = GREY if group in greyed else COLORS[0]
            tip = f"{group}: {label} {_pct(est)}"
            attrs = f'data-group="{escape(group)}" data-metric="{escape(name)}"'
            if est is None:
                tip += f" ({reason})" if reason else ""
                parts.append(
                    f'<g class="rate undefined" {attrs}><title>{escape(tip)}</title>'
                    f'<text x="{x0:.1f}" y="{y + 4:.1f}" font-size="12" font-style="italic" '
                    f'fill="{MUTED}">undefined</text></g>'
                )
                continue
            tip += f", 95% interval [{_pct(low)}, {_pct(high)}]"
            parts.append(
                f'<g class="rate" {attrs} data-estimate="{est!r}"><title>{escape(tip)}</title>'
            )
            if low is not None and high is not None:
                parts.append(
                    f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{color}" stroke-width="3"/>'
                )
            parts.append(
                f'<circle cx="{x(est):.1f}" cy="{y:.1f}" r="5" fill="{color}"/>'
                f'<text x="{x1 + 8:.1f}" y="{y + 4:.1f}" font-size="12" fill="{color}">'
                f"{_pct(est)}</text></g>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class CurvePoint:
    """One model version on the learning curve: trained on ``labels`` human labels, its
    holdout accuracy ``estimate`` in [``low``, ``high``] (None: not measured)."""

    version: int
    labels: float
    estimate: float | None
    low: float | None
    high: float | None
    rejected: bool = False


def learning_curve(points: Sequence[CurvePoint], *, title: str) -> Markup:
    """Holdout accuracy against human labels: the kept versions joined by a line with
    their intervals as a band, rejected versions as red crosses; versions without a
    measured accuracy are left out (say so next to the chart).

    >>> svg = learning_curve([CurvePoint(1, 100, 0.9, 0.85, 0.94),
    ...                       CurvePoint(2, 150, 0.6, 0.5, 0.7, rejected=True)], title="t")
    >>> "polygon" in svg, svg.count('class="point rejected"')
    (True, 1)
    """
    width, height, pad, left = 560, 200, 30, 40
    pts = [p for p in points if p.estimate is not None]
    parts = _open(width, height, title, "curve")
    lows = [p.low if p.low is not None else p.estimate for p in pts]
    floor = min([0.5, *(v for v in lows if v is not None)])
    floor = math.floor(10 * floor) / 10
    xs = [p.labels for p in pts]
    xlo, xhi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if xhi == xlo:
        xlo, xhi = xlo - 1, xhi + 1

    def x(v: float) -> float:
        return left + (width - left - pad) * (v - xlo) / (xhi - xlo)

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * (min(max(v, floor), 1.0) - floor) / (1 - floor)

    for v in (floor, (floor + 1) / 2, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{width - pad}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="#dde1e7"/><text x="2" y="{y(v) + 4:.1f}" font-size="11" '
            f'fill="{MUTED}">{100 * v:.0f}%</text>'
        )
    for v in (xlo, xhi) if xs and min(xs) != max(xs) else ():
        parts.append(
            f'<text x="{x(v) - 12:.1f}" y="{height - 8}" font-size="11" fill="{MUTED}">{v:g}</text>'
        )
    parts.append(
        f'<text x="{width / 2 - 60:.0f}" y="{height - 8}" font-size="11" fill="{MUTED}">'
        "human labels trained on</text>"
    )
    kept = sorted((p for p in pts if not p.rejected), key=lambda p: (p.labels, p.version))
    band = [p for p in kept if p.low is not None and p.high is not None]
    if band:
        upper = [f"{x(p.labels):.1f},{y(p.high or 0):.1f}" for p in band]
        lower = [f"{x(p.labels):.1f},{y(p.low or 0):.1f}" for p in reversed(band)]
        parts.append(
            f'<polygon points="{" ".join(upper + lower)}" fill="{COLORS[0]}" fill-opacity="0.15"/>'
        )
    if len(kept) > 1:
        line = " ".join(f"{x(p.labels):.1f},{y(p.estimate or 0):.1f}" for p in kept)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{COLORS[0]}" stroke-width="2"/>'
        )
    for p in pts:
        px, py = x(p.labels), y(p.estimate or 0)
        tip = (
            f"version {p.version}{' (rejected)' if p.rejected else ''}: holdout accuracy "
            f"{_pct(p.estimate)} [{_pct(p.low)}, {_pct(p.high)}] after {p.labels:g} labels"
        )
        if p.rejected:
            mark = (
                f'<path d="M{px - 5:.1f},{py - 5:.1f}L{px + 5:.1f},{py + 5:.1f}'
                f'M{px - 5:.1f},{py + 5:.1f}L{px + 5:.1f},{py - 5:.1f}" stroke="#a4161a" '
                f'stroke-width="2.5"/><text x="{px + 8:.1f}" y="{py + 4:.1f}" font-size="11" '
                f'fill="#a4161a">v{p.version} rejected</text>'
            )
        else:
            mark = (
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{COLORS[0]}"/>'
                f'<text x="{px + 8:.1f}" y="{py - 6:.1f}" font-size="11" fill="{INK}">'
                f"v{p.version}</text>"
            )
        parts.append(
            f'<g class="point {"rejected" if p.rejected else "kept"}" '
            f'data-version="{p.version}" data-estimate="{p.estimate!r}">'
            f"<title>{escape(tip)}</title>{mark}</g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def mini_interval(
    estimate: float | None, low: float | None, high: float | None, *, title: str
) -> Markup:
    """A small bar for a table cell: an estimate with its interval on [0, 100%]."""
    w, h = 140, 16

    def x(v: float) -> float:
        return 4 + (w - 8) * min(max(v, 0.0), 1.0)

    parts = [
        *_open(w, h, title, "mini"),
        f'<line x1="4" x2="{w - 4}" y1="8" y2="8" stroke="#dde1e7" stroke-width="4"/>',
    ]
    if low is not None and high is not None:
        parts.append(
            f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="8" y2="8" stroke="{COLORS[0]}" '
            'stroke-width="4" stroke-opacity="0.45"/>'
        )
    if estimate is not None:
        parts.append(f'<circle cx="{x(estimate):.1f}" cy="8" r="4" fill="{COLORS[0]}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
