"""Create a NEW tracker tab in a Google spreadsheet (the Sheets twin of ``xlsx_init``).

Three calls: one spreadsheets.get (is the tab name free, which sheet ids are taken), one
spreadsheets:batchUpdate (add the tab with a frozen header row, bold filled header, number
formats, dropdown validations, the key column as a warning-only protected range) and one
values.update (RAW) with the header and rows. An existing tab is never overwritten.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import gspread

from sheets.backends.gsheets import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    GSheetsBackend,
    SheetMeta,
    encode_cell,
    quote_tab,
)
from sheets.grid import CellValue

SPARE_ROWS = 1000  # empty rows below the data, already validated and formatted
_HEADER_FORMAT = {
    "textFormat": {"bold": True, "foregroundColor": {"red": 1, "green": 1, "blue": 1}},
    "backgroundColor": {"red": 0.188, "green": 0.329, "blue": 0.588},
}


MONEY_FORMAT = {"type": "NUMBER", "pattern": "#,##0.00"}
_TYPE_FORMATS = {"date": DATE_FORMAT, "datetime": DATETIME_FORMAT, "decimal": MONEY_FORMAT}


def _number_format(value: CellValue) -> dict[str, str] | None:
    if isinstance(value, datetime):
        return DATETIME_FORMAT
    if isinstance(value, date):
        return DATE_FORMAT
    if isinstance(value, Decimal) and value.as_tuple().exponent == -2:
        return {"type": "NUMBER", "pattern": "0.00"}
    return None


def init_google_tracker(
    client_or_backend: gspread.Client | GSheetsBackend,
    spreadsheet_key: str,
    tab: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[CellValue]],
    *,
    key_header: str,
    status_header: str,
    status_choices: Mapping[str, Sequence[str]],
    types: Mapping[str, str] | None = None,
) -> GSheetsBackend:
    """Add tab ``tab`` to the spreadsheet holding ``headers`` and ``rows``; returns its backend.

    ``status_choices`` maps a header to its allowed values (a dropdown): strict for choice
    columns, a warning only on the status column (the sync writes notes there). A column's
    number format follows its type in ``types`` (header -> ``date``, ``datetime``, ``decimal``:
    money as ``#,##0.00``), else its first non-empty value (dates, datetimes, 2-decimal
    money). Every call is one request whatever the number of rows (linear time).
    Raises ``ValueError`` if the tab already exists or a header is unknown.
    """
    headers = list(headers)
    for name in (key_header, status_header, *status_choices):
        if name not in headers:
            raise ValueError(f"{name!r} is not one of the headers")
    for values in rows:
        if len(values) != len(headers):
            raise ValueError(f"row {values!r} does not have {len(headers)} values")
    if isinstance(client_or_backend, GSheetsBackend):
        backend = GSheetsBackend(
            spreadsheet_key,
            tab,
            client=client_or_backend.client,
            retry=client_or_backend.retry,
            metadata_cache=client_or_backend.cache,
        )
    else:
        backend = GSheetsBackend(spreadsheet_key, tab, client=client_or_backend)
    http, retry = backend.http, backend.retry

    existing = retry.run(
        f"reading the tabs of spreadsheet {spreadsheet_key}",
        lambda: http.fetch_sheet_metadata(
            spreadsheet_key, params={"fields": "sheets.properties(sheetId,title)"}
        ),
    )
    props = [s["properties"] for s in existing.get("sheets", [])]
    if any(p["title"].casefold() == tab.casefold() for p in props):
        raise ValueError(f"spreadsheet {spreadsheet_key} already has a tab named {tab!r}")
    taken = {int(p.get("sheetId", 0)) for p in props}
    sheet_id = random.randrange(1, 2**31 - 1)
    while sheet_id in taken:
        sheet_id = random.randrange(1, 2**31 - 1)

    width, height = len(headers), len(rows) + 1 + SPARE_ROWS
    key_col = headers.index(key_header)

    def box(r0: int, r1: int, c0: int, c1: int) -> dict[str, int]:
        return {
            "sheetId": sheet_id,
            "startRowIndex": r0,
            "endRowIndex": r1,
            "startColumnIndex": c0,
            "endColumnIndex": c1,
        }

    requests: list[dict[str, Any]] = [
        {
            "addSheet": {
                "properties": {
                    "sheetId": sheet_id,
                    "title": tab,
                    "gridProperties": {
                        "rowCount": height,
                        "columnCount": max(width, 26),
                        "frozenRowCount": 1,
                    },
                }
            }
        },
        {
            "repeatCell": {
                "range": box(0, 1, 0, width),
                "cell": {"userEnteredFormat": _HEADER_FORMAT},
                "fields": "userEnteredFormat(textFormat,backgroundColor)",
            }
        },
    ]
    for col in range(width):
        fmt = _TYPE_FORMATS.get((types or {}).get(headers[col], "")) or next(
            (_number_format(r[col]) for r in rows if r[col] is not None and r[col] != ""), None
        )
        if fmt is not None:
            requests.append(
                {
                    "repeatCell": {
                        "range": box(1, height, col, col + 1),
                        "cell": {"userEnteredFormat": {"numberFormat": fmt}},
                        "fields": "userEnteredFormat.numberFormat",
                    }
                }
            )
    for header, choices in status_choices.items():
        col = headers.index(header)
        requests.append(
            {
                "setDataValidation": {
                    "range": box(1, height, col, col + 1),
                    "rule": {
                        "condition": {
                            "type": "ONE_OF_LIST",
                            "values": [{"userEnteredValue": str(c)} for c in choices],
                        },
                        "inputMessage": f"Pick one of the {header} values",
                        "strict": header != status_header,
                        "showCustomUi": True,
                    },
                }
            }
        )
    requests.append(
        {
            "addProtectedRange": {
                "protectedRange": {
                    "range": {
                        "sheetId": sheet_id,
                        "startColumnIndex": key_col,
                        "endColumnIndex": key_col + 1,
                    },
                    "description": f"{key_header}: the sync matches rows by this key",
                    "warningOnly": True,
                }
            }
        }
    )
    retry.run(
        f"adding tab {tab!r} to spreadsheet {spreadsheet_key}",
        lambda: http.batch_update(spreadsheet_key, {"requests": requests}),
    )
    backend.cache.put(spreadsheet_key, tab, SheetMeta(sheet_id, tab))
    values = [headers, *([encode_cell(v) for v in r] for r in rows)]
    retry.run(
        f"writing {len(rows)} row(s) to tab {tab!r} of {spreadsheet_key}",
        lambda: http.values_update(
            spreadsheet_key,
            f"{quote_tab(tab)}!A1",
            params={"valueInputOption": "RAW"},
            body={"values": values},
        ),
    )
    return backend
