"""The one HTML kit of every job's report: a self-contained page (images embedded) built from a few pieces."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from nasforge._files import write_atomic

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} code,pre{background:#f6f8fa;padding:2px 4px}
pre{padding:10px;overflow-x:auto} .ok{color:#1a7f37} .bad{color:#cf222e} img{max-width:100%}
.kv td:first-child{text-align:left;font-weight:600} .muted{color:#777}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px;align-items:start}
"""


def fmt(v: Any) -> str:
    """A cell's text: integers with thousands separators, floats to 4 significant digits, the rest escaped."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return html.escape(str(v))


def esc(text: Any) -> str:
    return html.escape(str(text))


def code(text: Any) -> str:
    return f"<code>{esc(text)}</code>"


def image(path: Path) -> str:
    """A PNG embedded in the page (a note when the file is missing)."""
    if not path.exists():
        return f"<p><em>{esc(path.name)} missing</em></p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{esc(path.name)}" src="data:image/png;base64,{data}">'


def kv_table(rows: Mapping[str, Any]) -> str:
    """A two-column table of names and values."""
    body = "".join(f"<tr><td>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in rows.items())
    return f'<table class="kv">{body}</table>'


def table(head: Sequence[str], rows: Iterable[Sequence[str]], left: Sequence[int] = ()) -> str:
    """A table of already formatted cells (``fmt``/``code``); columns in ``left`` are left-aligned."""
    def cell(tag: str, i: int, text: str) -> str:
        return f"<{tag} class='l'>{text}</{tag}>" if i in left else f"<{tag}>{text}</{tag}>"

    top = "<tr>" + "".join(cell("th", i, esc(h)) for i, h in enumerate(head)) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>{top}{body}</table>"


def config_block(config: Mapping[str, Any]) -> str:
    """The run's config as YAML."""
    return "<h2>Config</h2><pre>" + esc(yaml.safe_dump(dict(config), sort_keys=False)) + "</pre>"


def page(title: str, parts: Iterable[str]) -> str:
    """The whole page: title, the parts in order, the shared style."""
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
                      f"<style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>", *parts, "</body></html>"])


def write_html(path: str | Path, text: str) -> Path:
    """Write a page atomically (temp file + rename)."""
    return write_atomic(path, text)
