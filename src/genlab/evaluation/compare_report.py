"""The comparison as a table in numbers with a mark per cell (good / fair / poor, by the
thresholds written under the table), sample scatter plots side by side and the loss curves:
report/compare.md, compare.html and compare.json."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

#: the marks' thresholds, printed in the report
THRESHOLDS = {
    "likelihood": "NLL gap to the data's true entropy (nats/point): good <= 0.1, fair <= 0.5, "
    "poor above; none where the model has no likelihood",
    "stability": "good: no diverged run, seeds' SWD interval within 25% of its mean and both "
    "learning rates (x0.3, x3) within 2x of the default's SWD; fair: within 4x and no "
    "divergence at the default rate; poor otherwise",
    "fidelity": "sliced Wasserstein distance to held-out points: good <= 0.05 with every mode "
    "hit, fair <= 0.15, poor above",
    "speed": "samples per second on this machine: good >= 10,000, fair >= 1,000, poor below",
}
#: digits' thresholds; FD's are multiples of the floor (the training images' own FD to the
#: references), so they do not depend on the feature network's scale
THRESHOLDS_DIGITS = {
    "likelihood": "held-out bits/dim on the 17-level pixels, where the figure bounds the "
    "discrete likelihood (flow: dequantized; diffusion: variational bound): good <= 1.5, "
    "fair <= 3.0, poor above (a uniform guess: 4.09); continuous densities (mixture, VAEs on "
    "grey levels) are not on that scale: 'continuous', unmarked; none for GAN and EBM",
    "stability": "(one seed without the sweep: not judged) good: no diverged run, seeds' FD "
    "interval within 25% of its mean and both "
    "learning rates (x0.3, x3) within 2x of the default's FD; fair: within 4x and no "
    "divergence at the default rate; poor otherwise",
    "fidelity": "FD to the held-out references: good <= 2x the floor (the training images' "
    "own FD to the references) with all 10 classes covered, fair <= 5x, poor above",
    "memorisation": "copy share: samples nearer to a training image than 95% of held-out "
    "images are (5% for a model that does not copy); flagged above 10%",
    "speed": "samples per second on this machine: good >= 1,000, fair >= 50, poor below",
}


def _fmt(pair, digits: int = 3) -> str:
    if pair is None:
        return "–"
    mean, half = pair
    return f"{mean:.{digits}g}" if not math.isfinite(half) else f"{mean:.{digits}g} ± {half:.2g}"


def stability(entry: dict, key: str) -> str:
    """The stability mark from the spread over seeds of ``key`` (SWD or FD), the diverged
    runs and the learning-rate sweep, by the thresholds written in the report."""
    s, sweep = entry["summary"], entry.get("lr_sweep", {})
    value = s[key]
    if len(entry["runs"]) < 2 and not sweep:
        return "– (one seed)"  # nothing to judge it by
    ratios = [v[key] / value[0] if v.get(key) and value else math.inf for v in sweep.values()]
    tight = value is not None and (not math.isfinite(value[1]) or value[1] <= 0.25 * value[0])
    if s["diverged"] == 0 and tight and all(r <= 2 for r in ratios):
        return "good"
    if s["diverged"] == 0 and all(r <= 4 for r in ratios):
        return "fair"
    return "poor"


def marks(entry: dict, true_nll: float | None) -> dict[str, str]:
    s = entry["summary"]
    out = {}
    if s["nll"] is None:
        out["likelihood"] = "none"
    elif true_nll is None:
        out["likelihood"] = "–"
    else:
        gap = s["nll"][0] - true_nll
        out["likelihood"] = "good" if gap <= 0.1 else "fair" if gap <= 0.5 else "poor"
    swd = s["swd"]
    out["stability"] = stability(entry, "swd")
    modes = s["modes_hit"]
    all_modes = modes is None or modes[0] >= 8
    if swd is None:
        out["fidelity"] = "poor"
    else:
        out["fidelity"] = (
            "good" if swd[0] <= 0.05 and all_modes else "fair" if swd[0] <= 0.15 else "poor"
        )
    rate = s["samples_per_s"]
    out["speed"] = "poor" if rate is None else (
        "good" if rate[0] >= 10_000 else "fair" if rate[0] >= 1_000 else "poor")  # fmt: skip
    return out


def fidelity_ranks(report: dict, key: str = "swd") -> dict[str, str]:
    """Rank by ``key`` (SWD, or FD on images); a family whose interval overlaps that of its
    group's best shares the group's rank (a tie the seeds cannot resolve)."""
    rows = [(label, e["summary"][key]) for label, e in report["families"].items()]
    rows = sorted([r for r in rows if r[1]], key=lambda r: r[1][0])
    out, leader, rank = {}, None, 0

    def bounds(pair):
        half = pair[1] if math.isfinite(pair[1]) else 0.0
        return pair[0] - half, pair[0] + half

    for i, (label, pair) in enumerate(rows):
        if leader is None or bounds(pair)[0] > bounds(leader)[1]:
            leader, rank = pair, i + 1
            out[label] = str(rank)
        else:
            out[label] = f"{rank} (tie)"
    return out


def _images(report: dict) -> bool:
    return report.get("data") == "digits"


def marks_images(entry: dict, floor: float) -> dict[str, str]:
    s = entry["summary"]
    out = {}
    bpd, kind = s["bits_per_dim"], s["nll_kind"] or ""
    if bpd is None:
        out["likelihood"] = "none"
    elif "continuous" in kind or "ELBO" in kind or "IWAE" in kind:
        out["likelihood"] = "continuous"
    else:
        out["likelihood"] = "good" if bpd[0] <= 1.5 else "fair" if bpd[0] <= 3.0 else "poor"
    fd = s["fd"]
    out["stability"] = stability(entry, "fd")
    covered = s["classes_covered"] is not None and s["classes_covered"][0] >= 10
    if fd is None:
        out["fidelity"] = "poor"
    else:
        good = fd[0] <= 2 * floor and covered
        out["fidelity"] = "good" if good else "fair" if fd[0] <= 5 * floor else "poor"
    copies = s["copy_share"]
    out["memorisation"] = "–" if copies is None else "copies" if copies[0] > 0.1 else "no"
    rate = s["samples_per_s"]
    out["speed"] = "poor" if rate is None else (
        "good" if rate[0] >= 1000 else "fair" if rate[0] >= 50 else "poor")  # fmt: skip
    return out


def table_images(report: dict) -> list[list[str]]:
    ranks = fidelity_ranks(report, "fd")
    rows = [["family", "held-out bits/dim", "likelihood", "diverged", "FD", "fidelity rank",
             "KID", "precision", "recall", "classes", "copy share", "NN distance ratio",
             "stability", "fidelity", "memorisation", "train s", "samples/s", "NFE",
             "speed"]]  # fmt: skip
    for label, entry in report["families"].items():
        s, m = entry["summary"], marks_images(entry, report["fd_floor"])
        bpd = "none" if s["bits_per_dim"] is None else (
            f"{_fmt(s['bits_per_dim'])} ({s['nll_kind'].split(' (')[0]})")  # fmt: skip
        rows.append([
            label, bpd, m["likelihood"], f"{s['diverged']}/{len(entry['runs'])}",
            _fmt(s["fd"]), ranks.get(label, "–"), _fmt(s["kid"], 2), _fmt(s["precision"], 2),
            _fmt(s["recall"], 2), _fmt(s["classes_covered"], 2), _fmt(s["copy_share"], 2),
            _fmt(s["distance_ratio"], 2), m["stability"], m["fidelity"], m["memorisation"],
            _fmt(s["train_seconds"], 3), _fmt(s["samples_per_s"], 3), str(s["nfe"]),
            m["speed"],
        ])  # fmt: skip
    return rows


def table(report: dict) -> list[list[str]]:
    if _images(report):
        return table_images(report)
    true_nll = report.get("true_nll")
    ranks = fidelity_ranks(report)
    rows = [["family", "held-out NLL (nats)", "likelihood", "diverged", "SWD", "fidelity rank",
             "MMD", "modes hit", "stability", "fidelity", "train s", "samples/s", "NFE",
             "speed"]]  # fmt: skip
    for label, entry in report["families"].items():
        s, m = entry["summary"], marks(entry, true_nll)
        nll = "none" if s["nll"] is None else f"{_fmt(s['nll'])} ({s['nll_kind'].split(' (')[0]})"
        rows.append([
            label, nll, m["likelihood"], f"{s['diverged']}/{len(entry['runs'])}", _fmt(s["swd"]),
            ranks.get(label, "–"), _fmt(s["mmd"], 2), _fmt(s["modes_hit"], 2), m["stability"],
            m["fidelity"], _fmt(s["train_seconds"], 3), _fmt(s["samples_per_s"], 3),
            str(s["nfe"]), m["speed"],
        ])  # fmt: skip
    return rows


def _image_grids(report: dict, folder: Path) -> list[str]:
    """Each family's first 64 samples (seed 0), side by side."""
    from ..viz.plots import image_grid, save, subplots

    labels = [k for k, e in report["families"].items() if "_samples" in e["runs"][0]]
    cols = 4
    rows = math.ceil(len(labels) / cols)
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows))
    for ax, label in zip(np.ravel(axes), labels, strict=False):
        grid = image_grid(report["families"][label]["runs"][0]["_samples"], nrow=8)
        ax.imshow(np.asarray(grid), cmap="gray")
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    for ax in np.ravel(axes)[len(labels) :]:
        ax.axis("off")
    save(fig, folder / "compare-samples.png")
    return ["compare-samples.png"]


def _figures(report: dict, folder: Path) -> list[str]:
    from ..viz.plots import save, subplots

    if _images(report):
        return _image_grids(report, folder)
    labels = list(report["families"])
    reference = report.get("_test")
    cols = 4
    rows = math.ceil(len(labels) / cols)
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows))
    for ax, label in zip(np.ravel(axes), labels, strict=False):
        fake = report["families"][label]["runs"][0].get("_samples")
        if reference is not None:  # the held-out points, grey, on the same axes everywhere
            ax.scatter(reference[:, 0], reference[:, 1], s=2, c="0.8")
            lo, hi = reference.min(0) - 0.5, reference.max(0) + 0.5
            ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
        if fake is not None:
            ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.5)
        ax.set(title=label, aspect="equal")
        ax.title.set_fontsize(8)
    for ax in np.ravel(axes)[len(labels) :]:
        ax.axis("off")
    save(fig, folder / "compare-samples.png")
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows))
    for ax, label in zip(np.ravel(axes), labels, strict=False):
        for run in report["families"][label]["runs"]:
            if run["curve"]:
                ax.plot(*zip(*run["curve"], strict=True), lw=0.8)
        ax.set_title(label, fontsize=8)
    for ax in np.ravel(axes)[len(labels) :]:
        ax.axis("off")
    save(fig, folder / "compare-loss.png")
    return ["compare-samples.png", "compare-loss.png"]


def _plain(obj: Any) -> Any:
    """The report without arrays (samples) and with tuples as lists, for JSON."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _intro(report: dict, command: str, machine: str) -> str:
    steps = "each recipe's" if report["steps"] is None else str(report["steps"])
    seeds = f"{report['seeds']} seeds per family"
    if report.get("shipped"):
        seeds = "the models shipped in genlab (one trained model each; the mixture fitted now)"
    common = (
        f"{seeds}; {steps} training steps; {report['n_generated']} samples per measurement. "
        f"Command: `{command}`. Machine: {machine}."
    )
    if not _images(report):
        return (
            f"Data: {report['data']} ({report['n_train']} training, {report['n_test']} "
            f"held-out points); {common} True held-out NLL of the data: "
            f"{report.get('true_nll', float('nan')):.3f} nats. Cells: mean ± 95% interval "
            "over seeds."
        )
    return (
        f"Data: digits 16x16, part 'models' ({report['n_train']} training images; "
        f"{report['n_test']} held-out references that no model and not the feature network "
        "trained on; the feature network trained on the other 359 digits, part 'features'); "
        f"{common} FD, KID and precision/recall (k=3) on the feature network's 128-D layer; "
        f"FD floor (the training images against the references): {report['fd_floor']:.2f}. "
        "Diffusion's recipe is class-conditional: it is sampled with labels 0-9 in turn, "
        "which draws from p(x) = sum_y p(y) p(x|y); the other families never see labels. "
        "Cells: mean ± 95% interval over seeds (one model: FD's interval comes from "
        "resampling the samples and references). Ranks: a family whose interval overlaps "
        "the leader's shares its rank (tie)."
    )


def marks_text(report: dict) -> str:
    """The marks' thresholds of the report's kind of data, one "- mark: rule" line each."""
    thresholds = THRESHOLDS_DIGITS if _images(report) else THRESHOLDS
    return "\n".join(f"- {k}: {v}" for k, v in thresholds.items())


def write_report(report: dict, out: str | Path, command: str, machine: str) -> Path:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows = table(report)
    fresh = any("_samples" in r for e in report["families"].values() for r in e["runs"])
    if fresh:
        figures = _figures(report, folder)
    else:  # a report read back from compare.json: its figures are already there
        figures = [f for f in ("compare-samples.png", "compare-loss.png") if (folder / f).is_file()]
    intro = _intro(report, command, machine)
    thresholds = THRESHOLDS_DIGITS if _images(report) else THRESHOLDS
    md = ["# genlab compare", "", intro, "",
          "| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]  # fmt: skip
    md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    md += ["", "Marks:", "", marks_text(report)]
    key = "fd" if _images(report) else "swd"
    md += ["", f"Learning-rate sweep (seed 0, {key.upper()} at x0.3 / x3 the recipe's rate):", ""]
    for label, entry in report["families"].items():
        sweep = entry.get("lr_sweep")
        if sweep:
            shown = ", ".join(
                f"x{f:g}: " + ("diverged" if v["diverged"] else f"{v[key]:.3g}")
                for f, v in sweep.items()
            )
            md.append(f"- {label}: {shown}")
    md += ["", *[f"![{f}]({f})" for f in figures], ""]
    (folder / "compare.md").write_text("\n".join(md))
    cells = lambda r, tag: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in r)  # noqa: E731
    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows[1:])
    doc = (
        "<!doctype html><meta charset='utf-8'><title>genlab compare</title>"
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}</style>"
        f"<h1>genlab compare</h1><p>{html.escape(intro)}</p>"
        f"<table><tr>{cells(rows[0], 'th')}</tr>{body}</table><h2>Marks</h2><ul>"
        + "".join(f"<li>{k}: {html.escape(v)}</li>" for k, v in thresholds.items())
        + "</ul>"
        + "".join(f"<p><img src='{f}' style='max-width:100%'></p>" for f in figures)
    )
    (folder / "compare.html").write_text(doc)
    (folder / "compare.json").write_text(json.dumps(_plain(report), indent=1))
    return folder / "compare.md"
