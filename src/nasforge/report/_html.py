"""One self-contained HTML page for a run: config, best architecture with its per-layer cost, plots, trials."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} code,pre{background:#f6f8fa;padding:2px 4px}
pre{padding:10px;overflow-x:auto} .ok{color:#1a7f37} .bad{color:#cf222e} img{max-width:100%}
.kv td:first-child{text-align:left;font-weight:600}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return html.escape(str(v))


def _img(path: Path) -> str:
    if not path.exists():
        return f"<p><em>{html.escape(path.name)} missing</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _kv(rows: Mapping[str, Any]) -> str:
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in rows.items())
    return f'<table class="kv">{body}</table>'


def render_report(config: Mapping[str, Any], trials: Sequence[Mapping[str, Any]], best: Mapping[str, Any] | None,
                  images: Sequence[Path]) -> str:
    """The page as a string. ``best`` holds ``arch``, metrics, ``cost`` totals, ``layers`` and ``fits``."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>nasforge run</title><style>{_CSS}</style>"
             "</head><body>", "<h1>nasforge search report</h1>"]
    n_ok = sum(1 for t in trials if t.get("status") == "ok")
    n_inf = sum(1 for t in trials if t.get("status") == "infeasible")
    n_fail = sum(1 for t in trials if t.get("status") == "failed")
    parts.append(f"<p>{len(trials)} trials: {n_ok} evaluated, {n_inf} infeasible (skipped before training), "
                 f"{n_fail} failed.</p>")
    parts.append("<h2>Best architecture</h2>")
    if best:
        parts.append(f"<p><code>{html.escape(str(best.get('space', '')))}:{html.escape(str(best['arch']))}"
                     "</code></p>")
        parts.append(_kv({k: v for k, v in best.items() if k not in ("arch", "space", "layers", "fits", "cost")}))
        cost = best.get("cost") or {}
        if cost:
            parts.append("<h3>Cost</h3>" + _kv(cost))
        fits = best.get("fits")
        if fits:
            rows = "".join(
                f"<tr><td class='l'>{html.escape(str(k))}</td><td>{_fmt(v.get('value'))}</td>"
                f"<td>{_fmt(v.get('limit'))}</td><td class='{'ok' if v.get('ok') else 'bad'}'>"
                f"{'fits' if v.get('ok') else 'exceeds'}</td></tr>"
                for k, v in fits.items() if isinstance(v, Mapping))
            parts.append(f"<h3>Device limits</h3><table><tr><th class='l'>limit</th><th>value</th><th>limit</th>"
                         f"<th>verdict</th></tr>{rows}</table>")
        layers = best.get("layers") or []
        if layers:
            head = ("<tr><th class='l'>layer</th><th class='l'>op</th><th>in</th><th>out</th>"
                    "<th>params</th><th>MACs</th></tr>")
            rows = "".join(
                f"<tr><td class='l'>{html.escape(str(r['name']))}</td><td class='l'>{html.escape(str(r['op']))}</td>"
                f"<td>{'x'.join(map(str, r['in_shape']))}</td><td>{'x'.join(map(str, r['out_shape']))}</td>"
                f"<td>{_fmt(r['params'])}</td><td>{_fmt(r['macs'])}</td></tr>" for r in layers)
            parts.append(f"<h3>Per-layer cost</h3><table>{head}{rows}</table>")
    else:
        parts.append("<p>No architecture was evaluated successfully.</p>")
    parts.append("<h2>Plots</h2>")
    parts.extend(_img(p) for p in images)
    parts.append("<h2>Top trials</h2>")
    top = sorted((t for t in trials if t.get("status") == "ok" and t.get("reward") is not None),
                 key=lambda t: -float(t["reward"]))[:20]
    rows = "".join(
        f"<tr><td>{t.get('number', '')}</td><td>{_fmt(float(t['reward']))}</td>"
        f"<td>{_fmt((t.get('cost') or {}).get('macs', ''))}</td>"
        f"<td>{_fmt((t.get('cost') or {}).get('peak_memory_bytes', ''))}</td>"
        f"<td class='l'><code>{html.escape(str(t['arch']))}</code></td></tr>" for t in top)
    parts.append("<table><tr><th>#</th><th>reward</th><th>MACs</th><th>peak bytes</th><th class='l'>arch</th></tr>"
                 f"{rows}</table>")
    parts.append("<h2>Config</h2><pre>" + html.escape(yaml.safe_dump(dict(config), sort_keys=False)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | Path, page: str) -> Path:
    """Write atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
