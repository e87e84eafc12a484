"""The dashboards' charts, drawn by :mod:`mcoms.core.charts` from the figures already read.

- energy per day (or month): metered and estimated kWh side by side;
- money per day (or month), one chart per currency: billed and collected;
- the load profile: average kWh in each local hour of the day over the period, weekdays
  and weekend days as two lines (total kWh of that hour ÷ the number of such days).
"""

from __future__ import annotations

from decimal import Decimal

from mcoms.core.charts import Series, chart
from mcoms.dashboard.kpis import Figures

ZERO = Decimal(0)


def energy(figs: Figures):
    return energy_chart(figs.period, figs.energy_trend)


def energy_chart(period, trend: dict, *, title: str = "Energy delivered"):
    """Metered and estimated kWh per day (or month) of ``period`` from ``trend``."""
    days = period.buckets()
    labels = [period.label(d) for d in days]
    metered = [trend.get(d, (ZERO, ZERO)) for d in days]
    return chart(
        labels,
        [
            Series("Metered", [k - e for k, e in metered]),
            Series("Estimated", [e for _k, e in metered]),
        ],
        title=f"{title} per {period.by}",
        unit="kWh",
        places=1,
    )


def money(figs: Figures) -> list:
    days = figs.period.buckets()
    labels = [figs.period.label(d) for d in days]
    found = []
    for currency in sorted(figs.total.money):
        trend = figs.money_trend.get(currency, {})
        values = [trend.get(d, (ZERO, ZERO)) for d in days]
        found.append(
            chart(
                labels,
                [
                    Series("Billed", [b for b, _c in values]),
                    Series("Collected", [c for _b, c in values]),
                ],
                title=f"Billed and collected per {figs.period.by} ({currency})",
                unit=currency,
                places=0,
            )
        )
    return found


def averages(figs: Figures) -> dict[tuple[bool, int], Decimal]:
    """Average kWh per (weekend?, hour): the hour's total ÷ the days that hour has data on."""
    return {
        key: (kwh / days).quantize(Decimal("0.01"))
        for key, (kwh, days) in figs.profile.items()
        if days
    }


def profile(figs: Figures):
    found = averages(figs)
    series = []
    for is_weekend, label, dashed in ((False, "Weekdays", False), (True, "Weekend days", True)):
        if any(weekend == is_weekend for weekend, _h in found):
            values = [found.get((is_weekend, h)) for h in range(24)]
            series.append(Series(label, values, kind="line", dashed=dashed))
    if not series:
        series = [Series("Weekdays", [None] * 24, kind="line")]
    return chart(
        [f"{h:02d}h" for h in range(24)],
        series,
        title="Load profile: average kWh in each hour of the day",
        unit="kWh",
        places=2,
        max_x_labels=8,
    )


def for_figures(figs: Figures) -> dict:
    return {
        "energy": energy(figs),
        "money": money(figs) if figs.with_money else [],
        "profile": profile(figs),
    }


def profile_note(figs: Figures) -> str:
    """The hour with the highest average load, in words."""
    found = averages(figs)
    if not found:
        return ""
    (is_weekend, hour), _ = max(found.items(), key=lambda kv: kv[1])
    when = "weekend days" if is_weekend else "weekdays"
    return f"Busiest hour: {hour:02d}:00–{hour + 1:02d}:00 on {when}."
