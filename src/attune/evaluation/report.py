"""The offline report: ``report.html`` (Jinja2, plots as PNG data URIs) and ``report.json``."""

from __future__ import annotations

import base64
import io
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")  # no display: render to memory only

import matplotlib.pyplot as plt

from attune.evaluation.compare import POPULARITY_BINS, Comparison
from attune.evaluation.offline import RANKING_METRICS

HTML_FILE = "report.html"
JSON_FILE = "report.json"
METRIC_LABELS = {
    "precision": "Precision",
    "recall": "Recall",
    "ndcg": "NDCG",
    "map": "MAP",
    "mrr": "MRR",
    "hit_rate": "Hit rate",
}

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("attune.evaluation", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def metric_curves(comparison: Comparison) -> str:
    """Each ranking metric against K, one line per model, as a data URI."""
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    ks = list(comparison.ks)
    for ax, metric in zip(axes.ravel(), RANKING_METRICS, strict=True):
        for result in comparison.results:
            if result.error:
                continue
            ax.plot(ks, [result.metrics[f"{metric}@{k}"] for k in ks], marker="o", label=result.label)
        ax.set_title(f"{METRIC_LABELS[metric]}@K")
        ax.set_xlabel("K")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _png(fig)


def popularity_plot(comparison: Comparison) -> str:
    """Popularity-percentile histogram of recommended items, and the mean percentile per model."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    centers = [(i + 0.5) / POPULARITY_BINS for i in range(POPULARITY_BINS)]
    labels, means = [], []
    k = str(comparison.popularity_k)
    for result in comparison.results:
        if result.error or not result.popularity_histogram:
            continue
        left.plot(centers, result.popularity_histogram, marker="o", label=result.label)
        value = result.beyond.get(k, {}).get("popularity_percentile")
        if value is not None:
            labels.append(result.label)
            means.append(value)
    left.set_xlabel("training popularity percentile of recommended items")
    left.set_ylabel("share of recommendations")
    left.grid(alpha=0.3)
    if labels:
        left.legend(frameon=False)
    right.bar(labels, means, color="#4c78a8")
    if comparison.test_popularity_percentile is not None:
        right.axhline(
            comparison.test_popularity_percentile, linestyle="--", color="#444", label="test interactions"
        )
        right.legend(frameon=False)
    right.set_ylim(0, 1)
    right.set_ylabel(f"mean popularity percentile @{k}")
    right.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return _png(fig)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render_html(comparison: Comparison) -> str:
    """The HTML report as a string."""
    rows = []
    for result in comparison.results:
        params = ", ".join(f"{k}={v}" for k, v in sorted(result.params.items())) or "defaults"
        rows.append({**result.__dict__, "params_text": params})
    best: dict[str, str] = {}
    for k in comparison.ks:
        for metric in RANKING_METRICS:
            key = f"{metric}@{k}"
            scored = [r for r in comparison.results if not r.error]
            if scored:
                best[key] = max(scored, key=lambda r, key=key: r.metrics[key]).label
    template = _environment.get_template("report.html.j2")
    return template.render(
        **{k: v for k, v in comparison.to_dict().items() if k not in ("results",)},
        rows=rows,
        best=best,
        metric_names=list(RANKING_METRICS),
        metric_labels=METRIC_LABELS,
        created=datetime.fromtimestamp(comparison.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        curves=metric_curves(comparison),
        popularity=popularity_plot(comparison),
        fmt=_fmt,
    )


def write_report(comparison: Comparison, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``out_dir`` (created); return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / HTML_FILE, out_dir / JSON_FILE
    _write(json_path, json.dumps(_jsonable(comparison.to_dict()), indent=2, sort_keys=True))
    _write(html_path, render_html(comparison))
    return html_path, json_path


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _jsonable(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
