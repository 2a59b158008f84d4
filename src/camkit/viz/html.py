"""Self-contained HTML pages: every image is embedded as a base64 PNG data URI and the style
is inline, so a page opens from disk with no server and no network."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from camkit.core.io import atomic_path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
figure { display: inline-block; margin: 4px; vertical-align: top; text-align: center; font-size: 11px; }
img { max-width: 100%; image-rendering: auto; }
"""


def esc(text: object) -> str:
    """HTML-escape any value's string form."""
    return html.escape(str(text))


def data_uri(image: np.ndarray | str | os.PathLike[str]) -> str:
    """A PNG data URI for an (H, W[, 3]) uint8 array or an image file."""
    if isinstance(image, np.ndarray):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        raw = buf.getvalue()
    else:
        p = Path(image)
        raw = p.read_bytes() if p.suffix.lower() == ".png" else _to_png(p)
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def _to_png(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def img(image: np.ndarray | str | os.PathLike[str], alt: str, width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return f'<img src="{data_uri(image)}" alt="{html.escape(alt)}"{w}>'


def figure(image: np.ndarray | str | os.PathLike[str], caption: str, width: int | None = None) -> str:
    return f"<figure>{img(image, caption, width)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def details(summary: str, text: str) -> str:
    """A collapsed block of preformatted text (configs)."""
    return f"<details><summary>{esc(summary)}</summary><pre>{esc(text)}</pre></details>"


def fmt(v: object, nd: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], nd: int = 4) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(c, nd))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_to_html(md: str) -> str:
    """Pipe tables become <table>, ``**bold**`` lines become headings, the rest paragraphs
    (enough for camkit's own study.md files; images are left out)."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            rows = [r for r in block[1:] if not all(set(c) <= set("-:") for c in r)]
            out.append(table(block[0], rows))
            continue
        if line and not line.startswith("!["):
            text = html.escape(line).replace("**", "")
            out.append(f"<h3>{text}</h3>" if line.startswith("**") else f"<p>{text}</p>")
        i += 1
    return "\n".join(out)


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A whole page: (heading, html body) sections."""
    body = "\n".join(f"<section><h2>{html.escape(h)}</h2>\n{b}</section>" for h, b in sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_page(path: str | os.PathLike[str], title: str, sections: Sequence[tuple[str, str]]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page(title, sections), encoding="utf-8")
    return path
