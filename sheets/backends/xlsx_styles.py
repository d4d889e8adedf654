"""Date number formats for written cells: read styles.xml's cellXfs, append an xf if needed.

styles.xml is edited as bytes: only ``<cellXfs count>`` and one appended ``<xf/>`` change,
everything else (fonts, fills, dxfs, extLst, ...) is kept verbatim.
"""

from __future__ import annotations

import re

_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_NUMFMT = re.compile(rb"<(?:[\w.-]+:)?numFmt\b([^>]*?)/?>")
_QUOTED = re.compile(r'"[^"]*"|\\.|\[(?![hms]+\])[^\]]*\]', re.IGNORECASE)
_DATE_TOKENS = re.compile(r"[dmyhs]", re.IGNORECASE)
# Built-in number formats that display dates or times (ECMA-376 18.8.30, incl. CJK ids).
_BUILTIN_DATES = frozenset([*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)])
FORMAT_FOR_KIND = {"date": 14, "datetime": 22, "time": 21}


def attrs(tag_attrs: bytes) -> dict[bytes, bytes]:
    """Attributes of a start tag's attribute text (values left XML-escaped)."""
    return {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3).replace(b'"', b"&quot;")
        for m in _ATTR.finditer(tag_attrs)
    }


def is_date_format(code: str) -> bool:
    """Whether a custom number format code displays a date or time."""
    return bool(_DATE_TOKENS.search(_QUOTED.sub("", code.split(";")[0])))


class StyleBook:
    """The cellXfs of one styles.xml, with just enough editing to give a cell a date format."""

    def __init__(self, xml: bytes) -> None:
        self._xml = xml
        cell_xfs = re.search(rb"<((?:[\w.-]+:)?)cellXfs\b([^>]*)>(.*?)</\1cellXfs>", xml, re.S)
        if cell_xfs is None:
            raise ValueError("styles.xml has no cellXfs")
        self._prefix = cell_xfs.group(1)
        self._span = cell_xfs.span()
        self._open_attrs = cell_xfs.group(2)
        p = self._prefix
        xf = re.compile(rb"<%bxf\b(?:([^>]*?)/>|([^>]*)>(.*?)</%bxf>)" % (p, p), re.S)
        self._xfs: list[tuple[dict[bytes, bytes], bytes]] = [
            (attrs(m.group(1) if m.group(1) is not None else m.group(2)), m.group(3) or b"")
            for m in xf.finditer(cell_xfs.group(3))
        ]
        self._body = cell_xfs.group(3)
        self._added: list[bytes] = []
        self._date_fmt_ids = set(_BUILTIN_DATES)
        for m in _NUMFMT.finditer(xml):
            fmt = attrs(m.group(1))
            code = fmt.get(b"formatCode", b"").decode("utf-8", "replace")
            if is_date_format(code.replace("&quot;", '"')):
                self._date_fmt_ids.add(int(fmt.get(b"numFmtId", b"0")))

    def is_date_style(self, index: int | None) -> bool:
        if index is None or not 0 <= index < len(self._xfs):
            return False
        return int(self._xfs[index][0].get(b"numFmtId", b"0")) in self._date_fmt_ids

    def date_style(self, index: int | None, kind: str) -> int:
        """A cellXfs index like ``index`` (or the default xf) that displays a ``kind`` value."""
        if self.is_date_style(index):
            return index  # type: ignore[return-value]
        known = index is not None and index < len(self._xfs)
        base_attrs, children = self._xfs[index if known else 0]  # type: ignore[index]
        wanted = {
            **base_attrs,
            b"numFmtId": str(FORMAT_FOR_KIND[kind]).encode(),
            b"applyNumberFormat": b"1",
        }
        for i, (xf_attrs, xf_children) in enumerate(self._xfs):
            if xf_attrs == wanted and xf_children == children:
                return i
        text = b" ".join(b'%b="%b"' % item for item in wanted.items())
        p = self._prefix
        if children:
            self._added.append(b"<%bxf %b>%b</%bxf>" % (p, text, children, p))
        else:
            self._added.append(b"<%bxf %b/>" % (p, text))
        self._xfs.append((wanted, children))
        return len(self._xfs) - 1

    def xml(self) -> bytes | None:
        """The edited styles.xml, or None when nothing was added."""
        if not self._added:
            return None
        count = str(len(self._xfs)).encode()
        open_attrs = re.sub(rb'\bcount\s*=\s*"[^"]*"', b'count="%b"' % count, self._open_attrs)
        if b"count" not in open_attrs:
            open_attrs += b' count="%b"' % count
        p = self._prefix
        block = b"<%bcellXfs%b>%b%b</%bcellXfs>" % (
            p,
            open_attrs,
            self._body,
            b"".join(self._added),
            p,
        )
        start, end = self._span
        return self._xml[:start] + block + self._xml[end:]
