"""The latent-variable comparison written out: latent.md, latent.html, latent.json and the
figure of every model's 2-D latent space, side by side."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

HEADER = (
    "model",
    "held-out reconstruction MSE",
    "held-out log-lik / dim (nats)",
    "latent quality",
    "fit (s)",
    "embed one new point (ms)",
)


def _fmt(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def rows(results: dict[str, Any], data: str) -> list[list[str]]:
    """The table of one data set, as text cells."""
    out = []
    for r in results["data"][data]:
        lik = (
            "none"
            if r["log_lik_per_dim"] is None
            else f"{_fmt(r['log_lik_per_dim'])} ({r['likelihood']})"
        )
        quality = (
            f"{r['separation']:.3f} (5-NN accuracy)"
            if "separation" in r
            else f"{r['latent_r2']:.3f} (R^2 of the true z)"
        )
        out.append(
            [
                r["model"],
                _fmt(r["recon_mse"]),
                lik,
                quality,
                _fmt(r["fit_seconds"], 3),
                _fmt(r["embed_ms_per_point"], 3),
            ]
        )
    return out


def scaling_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    sizes = list(next(iter(results["scaling"].values())))
    head = ["model", *(f"N = {n}" for n in sizes)]
    body = [[m, *(_fmt(t[n], 3) for n in sizes)] for m, t in results["scaling"].items()]
    return head, body


def figure(results: dict[str, Any], data: str, labels: np.ndarray | None):
    from ..viz.plots import subplots

    models = results["data"][data]
    fig, axes = subplots(1, len(models), figsize=(2.6 * len(models), 2.8))
    for ax, r in zip(np.atleast_1d(axes), models, strict=True):
        z = r["codes"]
        c = labels if labels is not None else "k"
        ax.scatter(z[:, 0], z[:, 1], s=3, c=c, cmap="tab10" if labels is not None else None)
        ax.set(title=r["model"], xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def _md_table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def write_report(results: dict[str, Any], out: str | Path, command: str, machine: str) -> Path:
    from ..viz.plots import save
    from .latent import datasets

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tests = {name: pair[1][1] for name, pair in datasets().items()}
    md = [
        f"# Latent-variable models compared (q = {results['q']})",
        "",
        f"Command: `{command}`. Machine: {machine}.",
        "",
    ]
    parts = [
        f"<h1>Latent-variable models compared (q = {results['q']})</h1>",
        f"<p>Command: <code>{html.escape(command)}</code>. Machine: {html.escape(machine)}.</p>",
    ]
    for data in results["data"]:
        labels = tests[data] if tests[data].ndim == 1 else None
        save(figure(results, data, labels), out / f"latent_{data}.png")
        table = rows(results, data)
        md += [
            f"## {data}",
            "",
            _md_table(list(HEADER), table),
            "",
            f"![{data}](latent_{data}.png)",
            "",
        ]
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in table
        )
        head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
        parts.append(
            f"<h2>{data}</h2><table><tr>{head}</tr>{cells}</table>"
            f'<img src="latent_{data}.png" alt="{data} latents">'
        )
    if not results["scaling"]:  # the quick settings skip it
        results = {**results, "scaling": {"(not measured: quick settings)": {"-": None}}}
    head, body = scaling_rows(results)
    md += ["## Fit time (s) against N (digits)", "", _md_table(head, body), ""]
    parts.append(
        "<h2>Fit time (s) against N (digits)</h2><table>"
        + "<tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
        + "</table>"
    )
    (out / "latent.md").write_text("\n".join(md))
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:100%}"
        "td,th{border:1px solid #ccc;padding:0.2em 0.5em}table{border-collapse:collapse}"
    )
    (out / "latent.html").write_text(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>latent-variable comparison</title><style>{style}</style>"
        f"</head><body>{''.join(parts)}</body></html>\n"
    )
    plain = {
        **results,
        "data": {
            d: [{k: v for k, v in r.items() if k != "codes"} for r in rs]
            for d, rs in results["data"].items()
        },
    }
    (out / "latent.json").write_text(json.dumps(plain, indent=2))
    return out / "latent.md"
