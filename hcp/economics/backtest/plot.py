"""A PNG of the modes chosen over time against the power and BTC prices (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hcp.economics.backtest.engine import BacktestResult
from hcp.economics.policy.profit import MODES

# mining, inference, idle, curtailed, rented
_COLORS = ("#f2a900", "#3b82f6", "#d1d5db", "#111827", "#a855f7")


def plot_backtest(result: BacktestResult, path: str | Path,
                  policies: tuple[str, ...] = ("hcp", "perfect_foresight")) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # headless: the CLI and the tests have no display
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    shown = [p for p in policies if p in result.outcomes]
    times = np.array([t.replace(tzinfo=None) for t in result.times], dtype="datetime64[s]")  # UTC
    fig, axes = plt.subplots(2 + len(shown), 1, figsize=(12, 3 + 1.6 * (2 + len(shown))),
                             sharex=True, height_ratios=[1.2, 1.0] + [1.0] * len(shown))
    axes[0].plot(times, result.power_usd_per_mwh, lw=0.6, color="#b91c1c")
    axes[0].set_ylabel("power\nUSD/MWh")
    axes[1].plot(times, result.btc_usd, lw=1.0, color="#f2a900")
    axes[1].set_ylabel("BTC\nUSD")
    cmap = ListedColormap(_COLORS)
    span = (float(times[0].astype(float)), float(times[-1].astype(float)))
    for ax, name in zip(axes[2:], shown, strict=True):
        modes = result.outcomes[name].modes.T  # devices x hours
        ax.imshow(modes, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=3,
                  extent=(mdates_num(span[0]), mdates_num(span[1]), len(modes) - 0.5, -0.5))
        ax.set_yticks(range(len(result.device_ids)), result.device_ids, fontsize=7)
        ax.set_ylabel(name, fontsize=8)
    axes[-1].xaxis_date()
    fig.legend(handles=[Patch(color=c, label=m.value) for c, m in zip(_COLORS, MODES, strict=True)],
               loc="upper right", ncols=4, fontsize=8)
    fig.suptitle("Mode per device over time vs power and BTC prices")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def mdates_num(epoch_s: float) -> float:
    """Seconds since 1970 in matplotlib's date units (days)."""
    return epoch_s / 86_400.0
