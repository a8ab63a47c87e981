"""Summaries of the quality rows: best per system and budget, a markdown table, a log-log plot."""

from __future__ import annotations

from pathlib import Path

BUDGETS = (5, 10, 20)


def best_by_budget(rows: list[dict], budgets=BUDGETS) -> dict[int, dict[str, dict]]:
    """``{budget: {system: best row with nfe <= budget}}`` (lowest error)."""
    out: dict[int, dict[str, dict]] = {}
    for budget in budgets:
        out[budget] = {}
        for row in rows:
            if row["nfe"] > budget or row["budget"] != budget:
                continue
            best = out[budget].get(row["system"])
            if best is None or row["error"] < best["error"]:
                out[budget][row["system"]] = row
    return out


def calibrated(rows: list[dict], budget: int) -> dict | None:
    """schedalg's row for ``budget`` whose sampler was chosen on calibration noise (None if absent)."""
    found = [r for r in rows if r["budget"] == budget and r["system"] == "schedalg"
             and str(r.get("note", "")).startswith("calibrated") and r["nfe"] <= budget]
    return min(found, key=lambda r: r["error"]) if found else None


def headline(rows: list[dict], budgets=BUDGETS) -> list[dict]:
    """Per budget: schedalg's best (over all rows, i.e. chosen on the evaluation noise), schedalg's
    calibrated choice, the best peer, and the error ratios to that peer."""
    table = []
    for budget, systems in best_by_budget(rows, budgets).items():
        ours = systems.get("schedalg")
        chosen = calibrated(rows, budget)
        peers = [r for s, r in systems.items() if s != "schedalg"]
        peer = min(peers, key=lambda r: r["error"]) if peers else None
        table.append({"budget": budget, "schedalg": ours, "calibrated": chosen, "peer": peer,
                      "ratio": (ours["error"] / peer["error"]) if ours and peer else None,
                      "calibrated_ratio": (chosen["error"] / peer["error"]) if chosen and peer else None})
    return table


def _label(row: dict | None) -> str:
    if row is None:
        return "-"
    return f"{row['sampler']} on {row['grid']} (NFE {row['nfe']})"


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Quality per network evaluation: schedalg vs peer libraries",
        "",
        f"Problem: {meta['problem']}",
        f"Command: `{meta['command']}`; batch {meta['batch']}, seed {meta['seed']}; "
        f"wall time {meta['seconds']:.0f} s.",
        "",
        "Error: RMS per dimension of the endpoint against a DOP853 reference solve (rtol 1e-9) of the "
        "same ODE from the same start, averaged over the batch (lower is better).",
        "",
        "## Best per budget",
        "",
        "| NFE budget | schedalg best | error | best peer | error | schedalg / peer |",
        "|---|---|---|---|---|---|",
    ]
    items = headline(rows)
    for item in items:
        ours, peer = item["schedalg"], item["peer"]
        lines.append(
            f"| {item['budget']} | {_label(ours)} | {ours['error']:.3e} | "
            f"{peer['system']}: {_label(peer)} | {peer['error']:.3e} | {item['ratio']:.2f} |"
            if ours and peer else f"| {item['budget']} | {_label(ours)} | - | {_label(peer)} | - | - |")
    if any(item["calibrated"] for item in items):
        lines += ["", "schedalg's best row above is the best of a sweep measured on the evaluation noise (an oracle "
                  "choice). The honest counterpart: one sampler per budget chosen on separate calibration noise "
                  "(`schedalg.geometry.select_sampler`), then measured once on the evaluation noise:", "",
                  "| NFE budget | schedalg calibrated choice | error | best peer error | calibrated / peer |",
                  "|---|---|---|---|---|"]
        for item in items:
            chosen, peer = item["calibrated"], item["peer"]
            if chosen and peer:
                lines.append(f"| {item['budget']} | {_label(chosen)} | {chosen['error']:.3e} | "
                             f"{peer['error']:.3e} | {item['calibrated_ratio']:.2f} |")
    lines += ["", "## Best per system and budget", "", "| NFE budget | system | sampler | grid | NFE | error |",
              "|---|---|---|---|---|---|"]
    for budget, systems in best_by_budget(rows).items():
        for system, row in sorted(systems.items(), key=lambda kv: kv[1]["error"]):
            lines.append(f"| {budget} | {system} | {row['sampler']} | {row['grid']} | {row['nfe']} | "
                         f"{row['error']:.3e} |")
    lines += ["", "## All rows", "", "| budget | system | sampler | grid | NFE | error | note |",
              "|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["budget"], r["system"], r["error"])):
        lines.append(f"| {row['budget']} | {row['system']} | {row['sampler']} | {row['grid']} | {row['nfe']} | "
                     f"{row['error']:.3e} | {row.get('note', '')} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Log-log error vs NFE: the best sampler of each system at each budget, plus all rows faintly."""
    from schedalg._optional import require

    matplotlib = require("matplotlib", "the benchmark plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = {"schedalg": "C3", "k-diffusion": "C0", "diffusers": "C2", "flow_matching": "C1"}
    for row in rows:
        ax.scatter(row["nfe"], row["error"], s=6, alpha=0.15, color=colours.get(row["system"], "grey"))
    best = best_by_budget(rows)
    for system, colour in colours.items():
        points = sorted((r["nfe"], r["error"]) for systems in best.values()
                        for s, r in systems.items() if s == system)
        if points:
            ax.plot(*zip(*points), "o-", color=colour, label=f"{system} (best per budget)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(list(BUDGETS))
    ax.set_xticklabels([str(b) for b in BUDGETS])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("network evaluations (NFE)")
    ax.set_ylabel("endpoint RMS error vs reference ODE solve")
    ax.set_title("Exact denoiser of smoothed 8x8 digits: error vs NFE")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
