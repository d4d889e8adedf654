"""The client kit: code that adds a Sync button for one tracker to the workbook (docs/xlwings.md).

:func:`client_code` gives the file for one client kind, configured with the endpoint's URL
(``/xlwings/sync/<tracker>``) and the tracker's tab (only that sheet's values are posted):

- ``vba``: a VBA module calling the xlwings add-in's ``RunServerPython`` (Excel on Windows
  and macOS);
- ``officescripts``: xlwings' own Office Scripts client with the tracker's ``main`` (Excel on
  the web, Automate tab);
- ``officejs``: a Script Lab / task pane snippet posting the workbook as the xlwings
  Office.js client does and applying the answer's ``setValues`` and ``alert`` actions;
- ``appsscript``: xlwings' own Apps Script client with the tracker's function (a tracker
  kept in Google Sheets that syncs from inside the sheet).

The token is never in the code: each client reads ``AUTH`` from the workbook's
``xlwings.conf`` sheet (``Bearer obt_…``). The xlwings version of the code is the server's.
"""

from __future__ import annotations

import json
import re
from importlib import resources

KINDS = ("vba", "officescripts", "officejs", "appsscript")

_VBA = """Attribute VB_Name = "OrderbridgeSync"
' Orderbridge: sync tracker %(tracker)s with the portal from this workbook (docs/xlwings.md).
' Needs the xlwings %(version)s add-in (or its VBA modules: xlwings quickstart --server).
' Your personal API token goes in the sheet "xlwings.conf": A1 = AUTH, B1 = Bearer obt_...
' Assign SyncWithOrderbridge to a button. Only sheet %(tab)s is sent.
Option Explicit

Const ORDERBRIDGE_URL As String = %(url)s

Sub SyncWithOrderbridge()
    RunServerPython ORDERBRIDGE_URL, include:=%(tab)s
End Sub
"""

_OFFICEJS = """// Orderbridge: sync tracker %(tracker)s from Excel (Office.js).
// The workbook goes to the portal as the xlwings %(version)s Office.js client posts it; the
// answer's actions write the changed cells and the status cells. docs/xlwings.md.
// Your personal API token goes in the sheet "xlwings.conf": A1 = AUTH, B1 = Bearer obt_...
const ORDERBRIDGE_URL = %(url)s;
const TRACKER_TAB = %(tab)s;
const XLWINGS_VERSION = %(version_json)s;

async function syncWithOrderbridge() {
  await Excel.run(async (context) => {
    const book = context.workbook;
    book.load("name");
    const sheets = book.worksheets.load("items/name");
    const conf = book.worksheets.getItemOrNullObject("xlwings.conf");
    await context.sync();
    let auth = "";
    if (!conf.isNullObject) {
      const region = conf.getRange("A1").getSurroundingRegion().load("values");
      await context.sync();
      region.values.forEach((row) => { if (row[0] === "AUTH") auth = String(row[1]); });
    }
    const payload = {
      client: "Office.js",
      version: XLWINGS_VERSION,
      book: { name: book.name, active_sheet_index: 0, selection: null },
      names: [],
      sheets: [],
    };
    for (const sheet of sheets.items) {
      let values = [[]];
      if (sheet.name === TRACKER_TAB) {
        const range = sheet.getUsedRange(true);
        const last = range.getLastCell().load("address");
        await context.sync();
        const all = sheet.getRange("A1:" + last.address.split("!").pop())
          .load("values, numberFormatCategories");
        await context.sync();
        values = all.values.map((row, r) => row.map((value, c) => {
          const category = all.numberFormatCategories[r][c];
          if ((category === "Date" || category === "Time") && typeof value === "number") {
            return new Date(Math.round((value - 25569) * 86400 * 1000)).toISOString();
          }
          return value;
        }));
      }
      payload.sheets.push({ name: sheet.name, values: values, pictures: [], tables: [] });
    }
    const response = await fetch(ORDERBRIDGE_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: auth },
      body: JSON.stringify(payload),
    });
    if (response.status !== 200) {
      throw new Error(await response.text());
    }
    const answer = await response.json();
    for (const action of answer.actions) {
      if (action.func === "setValues") {
        sheets.items[action.sheet_position]
          .getRangeByIndexes(action.start_row, action.start_column,
                             action.row_count, action.column_count)
          .values = action.values;
      } else if (action.func === "alert") {
        throw new Error(action.args[0]);
      }
    }
    await context.sync();
  });
}
"""


# kind -> xlwings' own client file, our file's extension, entry function, its runPython call
_XLWINGS_CLIENTS = {
    "officescripts": (
        "xlwings.ts",
        "ts",
        "async function main(workbook: ExcelScript.Workbook)",
        "await runPython(workbook, ",
    ),
    "appsscript": ("xlwings.js", "gs", "function syncWithOrderbridge()", "runPython("),
}


def _quote_vba(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _xlwings_js(name: str) -> str:
    return resources.files("xlwings").joinpath("js", name).read_text(encoding="utf-8")


def _with_main(source: str, head: str) -> str:
    """xlwings' client ``source`` with its sample entry function replaced by ``head``."""
    start = source.index("/**")  # the sample function comes before the license comment
    return head + "\n" + source[start:]


def client_code(kind: str, url: str, tracker: str, tab: str) -> tuple[str, str]:
    """(file name, code) of the ``kind`` client for tracker ``tracker`` at ``url``."""
    from xlwings import __version__ as version

    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", tracker).strip("-") or "tracker"
    if kind == "vba":
        values = {"tracker": tracker, "version": version, "url": _quote_vba(url)}
        return f"orderbridge-{slug}.bas", _VBA % {**values, "tab": _quote_vba(tab)}
    if kind in _XLWINGS_CLIENTS:
        source, suffix, signature, call = _XLWINGS_CLIENTS[kind]
        head = (
            f"// Orderbridge: sync tracker {tracker} (docs/xlwings.md). Token: sheet\n"
            '// "xlwings.conf", A1 = AUTH, B1 = Bearer obt_...\n'
            f"{signature} {{\n"
            f"  {call}{json.dumps(url)}, {{ include: {json.dumps(tab)} }});\n"
            "}\n"
        )
        return f"orderbridge-{slug}.{suffix}", _with_main(_xlwings_js(source), head)
    if kind == "officejs":
        values = {
            "tracker": tracker,
            "version": version,
            "version_json": json.dumps(version),
            "url": json.dumps(url),
            "tab": json.dumps(tab),
        }
        return f"orderbridge-{slug}.js", _OFFICEJS % values
    raise ValueError(f"kind must be one of {', '.join(KINDS)}")
