"""The XML of a tracker tab, and the few styles it needs appended to a workbook's styles.xml.

Written directly (one pass over the rows, linear in their number): bold white-on-blue header,
frozen header row, autofilter, column widths, list validations, typed cells (inline strings,
numbers, dates with a date format, ``Decimal`` as its digits) and a sheet protection that
locks only the key column. styles.xml is edited as bytes: one font, one fill, a few number
formats and cell formats are appended (or reused when an identical one is there already);
everything else in it is kept verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from sheets.backends.xlsx_sheet import column_letters, encode_value
from sheets.grid import CellValue

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_MAX_LIST_FORMULA = 255  # Excel's limit on an inline list validation
_HEADER_FONT = b'<font><b/><sz val="11"/><color rgb="FFFFFFFF"/><name val="Calibri"/></font>'
_HEADER_FILL = (
    b'<fill><patternFill patternType="solid"><fgColor rgb="FF305496"/></patternFill></fill>'
)
_PROTECTION_ALLOWS = (
    "formatCells",
    "formatColumns",
    "formatRows",
    "insertColumns",
    "insertRows",
    "insertHyperlinks",
    "deleteRows",
    "sort",
    "autoFilter",
)


def number_format(value: CellValue) -> str | None:
    if isinstance(value, datetime):
        return "yyyy-mm-dd hh:mm"
    if isinstance(value, date):
        return "yyyy-mm-dd"
    if isinstance(value, Decimal):
        return "0.00" if value.as_tuple().exponent == -2 else None
    return None


class TrackerStyles:
    """Append-or-reuse editing of styles.xml for the tracker's cell formats."""

    def __init__(self, xml: bytes) -> None:
        self.xml = xml
        self._xf: dict[tuple[str | None, bool, bool], int] = {}

    def _block(self, name: bytes) -> re.Match[bytes] | None:
        return re.search(
            rb"<((?:[\w.-]+:)?)%b\b([^>]*?)(?:/>|>(.*?)</\1%b>)" % (name, name), self.xml, re.S
        )

    def _append(self, block: bytes, child: bytes, item: bytes) -> int:
        """Index of ``item`` among the ``child`` elements of ``block``, appended if missing."""
        m = self._block(block)
        if m is None:
            raise ValueError(f"styles.xml has no {block.decode()}")
        prefix, body = m.group(1), m.group(3) or b""
        item = item.replace(b"<", b"<" + prefix).replace(b"<" + prefix + b"/", b"</" + prefix)
        items = re.findall(
            rb"<%b%b\b(?:[^>]*?/>|.*?</%b%b>)" % (prefix, child, prefix, child), body, re.S
        )
        if item in items:
            return items.index(item)
        attrs = re.sub(rb'\s*\bcount\s*=\s*"[^"]*"', b"", m.group(2))
        new = b'<%b%b%b count="%d">%b%b</%b%b>' % (
            prefix,
            block,
            attrs,
            len(items) + 1,
            body,
            item,
            prefix,
            block,
        )
        self.xml = self.xml[: m.start()] + new + self.xml[m.end() :]
        return len(items)

    def _num_fmt(self, code: str) -> int:
        codes = {
            m.group(2).decode(): int(m.group(1))
            for m in re.finditer(
                rb'<(?:[\w.-]+:)?numFmt\b[^>]*?numFmtId="(\d+)"[^>]*?formatCode="([^"]*)"', self.xml
            )
        }
        if code in codes:
            return codes[code]
        new_id = max([163, *codes.values()]) + 1
        if self._block(b"numFmts") is None:  # numFmts is styleSheet's first child
            root = re.search(rb"<((?:[\w.-]+:)?)styleSheet\b[^>]*>", self.xml)
            if root is None:
                raise ValueError("styles.xml has no styleSheet")
            empty = b'<%bnumFmts count="0"/>' % root.group(1)
            self.xml = self.xml[: root.end()] + empty + self.xml[root.end() :]
        item = b'<numFmt numFmtId="%d" formatCode=%b/>' % (new_id, quoteattr(code).encode())
        self._append(b"numFmts", b"numFmt", item)
        return new_id

    def xf(self, fmt: str | None, *, locked: bool, header: bool = False) -> int:
        """The cellXfs index of a cell with number format ``fmt``, locked or not."""
        wanted = (fmt, locked, header)
        if wanted not in self._xf:
            font = self._append(b"fonts", b"font", _HEADER_FONT) if header else 0
            fill = self._append(b"fills", b"fill", _HEADER_FILL) if header else 0
            num = self._num_fmt(fmt) if fmt else 0
            applied = b' applyNumberFormat="1"' if fmt else b""
            if header:
                applied += b' applyFont="1" applyFill="1"'
            item = b'<xf numFmtId="%d" fontId="%d" fillId="%d" borderId="0" xfId="0"%b' % (
                num,
                font,
                fill,
                applied,
            )
            if locked:
                item += b"/>"
            else:
                item += b' applyProtection="1"><protection locked="0"/></xf>'
            self._xf[wanted] = self._append(b"cellXfs", b"xf", item)
        return self._xf[wanted]


@dataclass(frozen=True)
class Validation:
    """A dropdown list on one column: an inline list or a range of the lists sheet."""

    column: int
    formula: str
    header: str
    warn: bool


def list_validations(
    headers: Sequence[str],
    choices: Mapping[str, Sequence[str]],
    status_header: str,
    lists_sheet: str,
) -> tuple[list[Validation], list[list[str]]]:
    """The validations, and the columns of values that need the (hidden) lists sheet."""
    validations, columns = [], []
    for header, values in choices.items():
        listed = ",".join(str(c) for c in values)
        if len(listed) + 2 <= _MAX_LIST_FORMULA and not any("," in str(c) for c in values):
            formula = f'"{listed}"'
        else:  # long or comma-holding lists go to a hidden sheet
            columns.append([str(c) for c in values])
            letter = column_letters(len(columns))
            quoted = "'" + lists_sheet.replace("'", "''") + "'"
            formula = f"{quoted}!${letter}$1:${letter}${len(values)}"
        column = headers.index(header) + 1
        validations.append(Validation(column, formula, header, header == status_header))
    return validations, columns


def _cell(ref: str, value: CellValue, style: int, date1904: bool) -> str:
    enc = encode_value(value, date1904)
    s = f' s="{style}"' if style else ""
    if enc.kind == "clear":
        return f'<c r="{ref}"{s}/>' if style else ""
    if enc.kind == "str":
        space = ' xml:space="preserve"' if enc.preserve else ""
        return f'<c r="{ref}"{s} t="inlineStr"><is><t{space}>{enc.text.decode()}</t></is></c>'
    if enc.kind == "b":
        return f'<c r="{ref}"{s} t="b"><v>{enc.text.decode()}</v></c>'
    return f'<c r="{ref}"{s}><v>{enc.text.decode()}</v></c>'


def _rows(
    headers: Sequence[str],
    rows: Sequence[Sequence[CellValue]],
    key_col: int,
    styles: TrackerStyles,
    date1904: bool,
) -> list[str]:
    letters = [column_letters(c) for c in range(1, len(headers) + 1)]
    head = styles.xf(None, locked=True, header=True)
    out = ['<row r="1">']
    out += [
        _cell(f"{ltr}1", str(h), head, date1904) for ltr, h in zip(letters, headers, strict=True)
    ]
    out.append("</row>")
    formats: dict[tuple[str | None, bool], int] = {}
    for r, values in enumerate(rows, start=2):
        if len(values) != len(headers):
            raise ValueError(f"row {list(values)!r} does not have {len(headers)} values")
        out.append(f'<row r="{r}">')
        for col, value in enumerate(values, start=1):
            fmt = number_format(value)
            locked = col == key_col
            style = formats.get((fmt, locked))
            if style is None:
                style = formats[fmt, locked] = styles.xf(fmt, locked=locked)
            out.append(_cell(f"{letters[col - 1]}{r}", value, style, date1904))
        out.append("</row>")
    return out


def _widths(
    headers: Sequence[str], rows: Sequence[Sequence[CellValue]], widths: Mapping[str, float]
) -> list[float]:
    out = []
    for col, header in enumerate(headers):
        width = widths.get(header)
        if width is None:
            longest = max([len(str(header))] + [len(str(r[col] or "")) for r in rows[:500]])
            width = min(max(longest + 2, 10), 60)
        out.append(width)
    return out


def tracker_sheet_xml(
    headers: Sequence[str],
    rows: Sequence[Sequence[CellValue]],
    *,
    key_col: int,
    validations: Sequence[Validation],
    widths: Mapping[str, float],
    styles: TrackerStyles,
    date1904: bool,
) -> bytes:
    """The worksheet part of a tracker tab."""
    last = column_letters(len(headers))
    last_row = max(len(rows) + 1, 2)
    unlocked = styles.xf(None, locked=False)
    cols = "".join(
        f'<col min="{c}" max="{c}" width="{w}" customWidth="1"'
        + ("" if c == key_col else f' style="{unlocked}"')
        + "/>"
        for c, w in enumerate(_widths(headers, rows, widths), start=1)
    )
    allows = " ".join(f'{flag}="0"' for flag in _PROTECTION_ALLOWS)
    dvs = "".join(
        f'<dataValidation type="list" errorStyle="{"warning" if v.warn else "stop"}" '
        f'allowBlank="1" showErrorMessage="1" errorTitle={quoteattr(v.header)} '
        f"error={quoteattr(f'Pick one of the {v.header} values')} "
        f'sqref="{column_letters(v.column)}2:{column_letters(v.column)}1048576">'
        f"<formula1>{escape(v.formula)}</formula1></dataValidation>"
        for v in validations
    )
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n',
        f'<worksheet xmlns="{MAIN_NS}">',
        f'<dimension ref="A1:{last}{last_row}"/>',
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
        'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A2" '
        'sqref="A2"/></sheetView></sheetViews>',
        '<sheetFormatPr defaultRowHeight="15"/>',
        f"<cols>{cols}</cols>",
        "<sheetData>",
        *_rows(headers, rows, key_col, styles, date1904),
        "</sheetData>",
        f'<sheetProtection sheet="1" {allows}/>',
        f'<autoFilter ref="A1:{last}{last_row}"/>',
        f'<dataValidations count="{len(validations)}">{dvs}</dataValidations>' if dvs else "",
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>',
        "</worksheet>",
    ]
    return "".join(parts).encode("utf-8")


def lists_sheet_xml(columns: Sequence[Sequence[str]]) -> bytes:
    """A plain sheet holding each list of values in a column from row 1."""
    height = max((len(c) for c in columns), default=0)
    rows = []
    for r in range(1, height + 1):
        cells = "".join(
            _cell(f"{column_letters(c)}{r}", col[r - 1], 0, False)
            for c, col in enumerate(columns, start=1)
            if r <= len(col)
        )
        rows.append(f'<row r="{r}">{cells}</row>')
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<worksheet xmlns="{MAIN_NS}"><sheetData>{"".join(rows)}</sheetData></worksheet>'
    ).encode()
