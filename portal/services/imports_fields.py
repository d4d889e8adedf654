"""What an import can read from a file: the fields of each kind, the presets and the mapping.

A mapping says which header of the file holds which field (``{"Order ID": "order_ref"}``).
It comes from a preset (``superstore``, ``northwind``, ``invoice-lines``: layouts teams
commonly have, matched whatever the header's spelling, case or column order), from a mapping
file (JSON: ``{"header": "field"}``), or from the suggester a user confirms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ImportField:
    """A field an import fills: its name, label, type and other spellings of its header."""

    name: str
    label: str
    type: str  # text, date, int, decimal, percent
    synonyms: tuple[str, ...] = ()
    order_level: bool = False  # repeated on every line of one order


def _f(name: str, label: str, type_: str, *synonyms: str, order: bool = False) -> ImportField:
    return ImportField(name, label, type_, synonyms, order)


ORDER_FIELDS: tuple[ImportField, ...] = (
    _f("order_ref", "Order id", "text", "order id", "order no", "invoice no", order=True),
    _f("order_date", "Order date", "date", "invoice date", "date", order=True),
    _f("requested_date", "Requested date", "date", "required date", order=True),
    _f("promised_date", "Promised date", "date", "promise date", "eta", order=True),
    _f("ship_date", "Ship date", "date", "shipped date", "shipped", order=True),
    _f("delivered_date", "Delivery date", "date", "delivered", "delivery date", order=True),
    _f("ship_mode", "Ship mode", "text", "ship via", "carrier", order=True),
    _f("status", "Status", "text", "order status", "state of order", order=True),
    _f("customer_code", "Customer id", "text", "customer code", "customer", order=True),
    _f("customer_name", "Customer name", "text", "company name", "ship name", order=True),
    _f("segment", "Segment", "text", "customer segment", order=True),
    _f("region", "Region", "text", "sales region", "territory", order=True),
    _f("customer_po", "Customer PO", "text", "po", "purchase order", order=True),
    _f("ship_street", "Ship-to street", "text", "ship address", "address", order=True),
    _f("ship_city", "Ship-to city", "text", "city", "ship city", order=True),
    _f("ship_state", "Ship-to state", "text", "state", "province", "ship region", order=True),
    _f("ship_postal_code", "Ship-to postal code", "text", "postal code", "zip", order=True),
    _f("ship_country", "Ship-to country", "text", "country", "ship country", order=True),
    _f("currency", "Currency", "text", order=True),
    _f("notes", "Notes", "text", "note", "comments", "remarks", order=True),
    _f("line_ref", "Line id", "text", "row id", "line no", "line id"),
    _f("product_code", "Product id", "text", "sku", "stock code", "product code", "item"),
    _f("product_name", "Product name", "text", "description", "product", "item name"),
    _f("category", "Category", "text", "product category"),
    _f("sub_category", "Sub-category", "text", "subcategory"),
    _f("quantity", "Quantity", "int", "qty", "units"),
    _f("unit_price", "Unit price", "decimal", "price", "price each"),
    _f("sales", "Line amount", "decimal", "sales", "amount", "line total", "net amount"),
    _f("discount", "Discount", "percent", "discount pct", "discount rate"),
)
CUSTOMER_FIELDS: tuple[ImportField, ...] = (
    _f("customer_code", "Customer id", "text", "customer id", "code"),
    _f("customer_name", "Customer name", "text", "company name", "name"),
    _f("segment", "Segment", "text"),
    _f("region", "Region", "text"),
    _f("email", "Email", "text", "e-mail"),
    _f("phone", "Phone", "text", "telephone"),
)
PRODUCT_FIELDS: tuple[ImportField, ...] = (
    _f("product_code", "Product id", "text", "sku", "product id", "stock code", "code"),
    _f("product_name", "Product name", "text", "name", "description"),
    _f("category", "Category", "text"),
    _f("sub_category", "Sub-category", "text", "subcategory"),
    _f("list_price", "List price", "decimal", "unit price", "price"),
)
STOCK_FIELDS: tuple[ImportField, ...] = (
    _f("product_code", "Product id", "text", "sku", "product id", "stock code"),
    _f("warehouse_code", "Warehouse", "text", "warehouse code", "location"),
    _f("on_hand", "On hand", "int", "quantity", "qty", "units in stock", "stock"),
)
FIELDS = {
    "orders": ORDER_FIELDS,
    "order_headers": tuple(f for f in ORDER_FIELDS if f.order_level),  # one row per order
    "customers": CUSTOMER_FIELDS,
    "products": PRODUCT_FIELDS,
    "stock": STOCK_FIELDS,
}

# Presets: normalised header → field. Normalising (lower case, letters and digits only)
# makes "Order ID", "order_id" and "OrderID" one header.
PRESETS: dict[str, dict[str, str]] = {
    "superstore": {
        "rowid": "line_ref",
        "orderid": "order_ref",
        "orderdate": "order_date",
        "shipdate": "ship_date",
        "shipmode": "ship_mode",
        "customerid": "customer_code",
        "customername": "customer_name",
        "segment": "segment",
        "country": "ship_country",
        "countryregion": "ship_country",
        "city": "ship_city",
        "state": "ship_state",
        "stateprovince": "ship_state",
        "postalcode": "ship_postal_code",
        "region": "region",
        "productid": "product_code",
        "category": "category",
        "subcategory": "sub_category",
        "productname": "product_name",
        "sales": "sales",
        "quantity": "quantity",
        "discount": "discount",
    },
    "northwind": {
        "orderid": "order_ref",
        "customerid": "customer_code",
        "orderdate": "order_date",
        "requireddate": "requested_date",
        "shippeddate": "ship_date",
        "shipvia": "ship_mode",
        "shipname": "customer_name",
        "shipaddress": "ship_street",
        "shipcity": "ship_city",
        "shipregion": "ship_state",
        "shippostalcode": "ship_postal_code",
        "shipcountry": "ship_country",
        "productid": "product_code",
        "productname": "product_name",
        "unitprice": "unit_price",
        "quantity": "quantity",
        "discount": "discount",
    },
    "invoice-lines": {
        "invoiceno": "order_ref",
        "invoice": "order_ref",
        "stockcode": "product_code",
        "description": "product_name",
        "quantity": "quantity",
        "invoicedate": "order_date",
        "unitprice": "unit_price",
        "price": "unit_price",
        "customerid": "customer_code",
        "country": "ship_country",
    },
}
# northwind: the order-details sheet joined to the orders sheet on the order id
NORTHWIND_SHEETS = ("Orders", "Orders Details")
# invoice-lines: an invoice number with this prefix cancels lines of an earlier invoice
CANCEL_PREFIX = {"invoice-lines": "C"}
# superstore: the workbook's "Returns" sheet lists the orders that came back (Returned = Yes)
RETURNS_SHEETS = {"superstore": ("Returns", "Order ID", "Returned")}
# a preset's status for rows whose file has none: an invoice line is a sale already invoiced
DEFAULT_STATUS = {"invoice-lines": "invoiced"}


class MappingProblem(ValueError):
    """A mapping that cannot be used; the message names the header or field."""


def normalise(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def fields_of(kind: str) -> dict[str, ImportField]:
    return {field.name: field for field in FIELDS[kind]}


def preset_mapping(preset: str, headers: Sequence[str]) -> dict[str, str]:
    """The headers of this file the preset knows, each to its field (first header wins)."""
    if preset not in PRESETS:
        raise MappingProblem(f"no preset {preset!r}; presets: {', '.join(sorted(PRESETS))}")
    known = PRESETS[preset]
    mapping: dict[str, str] = {}
    for header in headers:
        field = known.get(normalise(header))
        if field and field not in mapping.values():
            mapping[header] = field
    return mapping


def load_mapping_file(path: Path) -> dict[str, str]:
    """A JSON mapping file: ``{"header": "field", ...}`` (a field of null skips the header)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingProblem(f"{path.name}: no such mapping file") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise MappingProblem(f"{path.name}: not a JSON mapping ({error})") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in data.items()
    ):
        raise MappingProblem(f'{path.name}: a mapping is a JSON object {{"header": "field"}}')
    return {header: field for header, field in data.items() if field}


def check_mapping(kind: str, mapping: Mapping[str, str], headers: Sequence[str]) -> None:
    """Refuse a mapping naming headers the file lacks, unknown or repeated fields, or
    missing the fields the kind needs."""
    known = fields_of(kind)
    missing_headers = [header for header in mapping if header not in headers]
    if missing_headers:
        raise MappingProblem(f"the file has no column {', '.join(map(repr, missing_headers))}")
    unknown = sorted({field for field in mapping.values() if field not in known})
    if unknown:
        raise MappingProblem(
            f"unknown field {', '.join(unknown)}; fields of {kind}: {', '.join(known)}"
        )
    seen: dict[str, str] = {}
    for header, field in mapping.items():
        if field in seen:
            raise MappingProblem(f"{seen[field]!r} and {header!r} both map to {field}")
        seen[field] = header
    mapped = set(mapping.values())
    needed = [names for names in REQUIRED[kind] if not mapped.intersection(names)]
    if needed:
        labels = ", ".join(" or ".join(known[name].label for name in names) for names in needed)
        raise MappingProblem(f"no column is mapped to {labels}")


# the fields a kind needs, each as alternatives (a customer by its id or its name)
REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "orders": [
        ("order_ref",),
        ("order_date",),
        ("quantity",),
        ("customer_code", "customer_name"),
        ("product_code", "product_name"),
    ],
    "order_headers": [("order_ref",), ("order_date",), ("customer_code", "customer_name")],
    "customers": [("customer_code",), ("customer_name",)],
    "products": [("product_code",), ("product_name",)],
    "stock": [("product_code",), ("warehouse_code",), ("on_hand",)],
}


SUGGESTER_TYPES = {"percent": "decimal"}
SAMPLE_ROWS = 20


def field_choices(kind: str) -> list[Any]:
    """The kind's fields as the suggester takes them (``sheets.mapping.FieldChoice``)."""
    from sheets.mapping import FieldChoice

    return [
        FieldChoice(spec.name, spec.label, SUGGESTER_TYPES.get(spec.type, spec.type), spec.synonyms)
        for spec in FIELDS[kind]
    ]


def suggest(kind: str, headers: Sequence[str], samples: Sequence[Sequence[Any]]) -> list[Any]:
    """The suggested field of every header (by name, synonyms and sample values)."""
    from sheets.mapping import suggest_mapping

    return suggest_mapping(headers, samples, field_choices(kind))


def header_row(kind: str, first_rows: Sequence[Sequence[Any]]) -> int:
    """The 1-based row of ``first_rows`` most likely to hold the headers."""
    from sheets.mapping import find_header_row

    return find_header_row(first_rows, field_choices(kind), max_scan=SAMPLE_ROWS)


def returned_orders(preset: str | None, path: Path) -> frozenset[str]:
    """The order ids the preset's returns sheet of ``path`` lists (none without one)."""
    from sheets.readers import ReadError, read_table, sheet_names

    spec = RETURNS_SHEETS.get(preset or "")
    if spec is None or path.suffix.lower() == ".csv":
        return frozenset()
    sheet, order_column, flag_column = spec
    try:
        if sheet not in sheet_names(path):
            return frozenset()
        table = read_table(path, sheet)
    except ReadError:
        return frozenset()
    if order_column not in table.headers:
        return frozenset()
    order = table.headers.index(order_column)
    flag = table.headers.index(flag_column) if flag_column in table.headers else None
    return frozenset(
        str(cells[order]).strip()
        for _, cells in table.rows
        if cells[order] and (flag is None or str(cells[flag]).strip().lower() in ("yes", "y"))
    )
