"""The mapping suggester (sheets/mapping.py): the team's own headers -> record fields."""

from __future__ import annotations

from datetime import date

from python_calamine import CalamineWorkbook

from sheets.mapping import FieldChoice, column_kind, find_header_row, suggest_mapping, words
from tests.conftest import shared_path

FIELDS = (
    FieldChoice("number", "Order number", "text", ("order id", "order no", "so#", "so number")),
    FieldChoice("line_ref", "Line reference", "text", ("line id", "row id", "line no")),
    FieldChoice("order_date", "Order date", "date", ("date ordered", "ordered on")),
    FieldChoice("requested_date", "Requested date", "date", ("required date", "due date")),
    FieldChoice("shipped_date", "Ship date", "date", ("shipped date", "shipped on")),
    FieldChoice("customer", "Customer code", "text", ("customer id", "customer", "account")),
    FieldChoice("customer_name", "Customer name", "text", ("company name", "client")),
    FieldChoice("sku", "SKU", "text", ("product id", "item code", "product code")),
    FieldChoice("product_name", "Product name", "text", ("item", "description")),
    FieldChoice("quantity", "Quantity", "int", ("qty", "units", "ordered qty")),
    FieldChoice("unit_price", "Unit price", "money", ("price", "unit cost")),
    FieldChoice("discount", "Discount", "decimal", ("disc", "discount %")),
    FieldChoice("status", "Status", "status", ("order status", "stage")),
)


def _by_header(suggestions) -> dict[str, str | None]:
    return {s.header: s.field for s in suggestions}


def test_words_read_camel_case_hash_and_abbreviations_alike() -> None:
    assert words("OrderID") == ("order", "id")
    assert words("SO#") == ("so", "number")
    assert words("  Order  No. ") == ("order", "number")
    assert words("Sub-Category") == ("sub", "category")


def test_superstore_headers_map_by_name_and_synonym() -> None:
    path = shared_path("data", "superstore", "Sample - Superstore.xlsx")
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Orders").to_python(nrows=40)
    suggestions = suggest_mapping(rows[0], rows[1:], FIELDS)
    assert [s.header for s in suggestions] == rows[0]  # one per header, in order
    assert _by_header(suggestions) == {
        "Row ID": "line_ref",
        "Order ID": "number",
        "Order Date": "order_date",
        "Ship Date": "shipped_date",
        "Ship Mode": None,
        "Customer ID": "customer",
        "Customer Name": "customer_name",
        "Segment": None,
        "Country": None,
        "City": None,
        "State": None,
        "Postal Code": None,
        "Region": None,
        "Product ID": "sku",
        "Category": None,
        "Sub-Category": None,
        "Product Name": "product_name",
        "Sales": None,
        "Quantity": "quantity",
        "Discount": "discount",
        "Profit": None,
    }
    quantity = suggestions[rows[0].index("Quantity")]
    assert quantity.confidence == 1.0 and "whole numbers" in quantity.reason
    assert suggestions[rows[0].index("Profit")].reason == "no field has a similar name"


def test_northwind_camel_case_headers_map() -> None:
    path = shared_path("data", "northwind", "Northwind.xlsx")
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Orders").to_python(nrows=30)
    got = _by_header(suggest_mapping(rows[0], rows[1:], FIELDS))
    assert got["OrderID"] == "number"
    assert got["CustomerID"] == "customer"
    assert got["OrderDate"] == "order_date"
    assert got["RequiredDate"] == "requested_date"
    assert got["ShippedDate"] == "shipped_date"
    assert got["EmployeeID"] is None and got["Freight"] is None and got["ShipCity"] is None


def test_team_abbreviations_qty_and_so_number() -> None:
    headers = ["SO#", "Qty", "Price", "Disc", "Stage"]
    rows = [["SO-1", 3, "$12.50", 0.1, "open"], ["SO-2", 1, "$8.00", 0, "shipped"]]
    got = suggest_mapping(headers, rows, FIELDS)
    assert [s.field for s in got] == ["number", "quantity", "unit_price", "discount", "status"]
    assert got[0].reason == '"SO#" is a usual name for Order number; the values are codes'
    assert "amounts" in got[2].reason


def test_each_field_is_used_once_and_the_better_header_wins() -> None:
    headers = ["Order", "Order No", "Order Number"]
    got = suggest_mapping(headers, [], FIELDS)
    assert [s.field for s in got] == [None, "number", None]
    assert got[2].reason == "Order number is already mapped from 'Order No'"


def test_sample_values_weaken_a_name_that_does_not_fit() -> None:
    headers = ["Quantity"]
    numbers = suggest_mapping(headers, [[2], [5], [7]], FIELDS)[0]
    words_in_cells = suggest_mapping(headers, [["lots"], ["a few"], ["many"]], FIELDS)[0]
    assert numbers.field == "quantity" and numbers.confidence == 1.0
    assert words_in_cells.field is None  # "Quantity" full of text is not a quantity column
    assert "whole numbers" not in words_in_cells.reason


def test_values_recognise_dates_money_ints_and_codes() -> None:
    assert column_kind([date(2024, 1, 2), "2024-01-03", "4/1/2024"]) == "date"
    assert column_kind(["$1,200.00", "€3.50", "$0.99"]) == "money"
    assert column_kind([1.0, 2, "3"]) == "int"
    assert column_kind([1.5, 2, 3]) == "decimal"
    assert column_kind(["CG-12520", "FUR-BO-10001798", "ALFKI"]) == "code"
    assert column_kind([None, "", "  "]) is None
    assert column_kind(["x", 1, date(2024, 1, 1), True]) is None  # no majority


def test_unknown_headers_map_to_none() -> None:
    got = suggest_mapping(
        ["Region", "Profit", "", "Notes to self"], [["West", 3.2, "", "x"]], FIELDS
    )
    assert [s.field for s in got] == [None, None, None, None]
    assert all(s.confidence == 0.0 for s in got)


def test_header_row_found_below_a_title_and_notes() -> None:
    rows = [
        ["Open orders - West team", None, None, None],
        ["exported 2024-03-01", None, None, None],
        ["Order ID", "Order Date", "Qty", "Customer"],
        ["CA-1", date(2024, 1, 2), 3, "ACME"],
        ["CA-2", date(2024, 1, 3), 5, "GLOBEX"],
    ]
    assert find_header_row(rows, FIELDS) == 3
    assert find_header_row(rows[2:], FIELDS) == 1
    assert find_header_row(rows, FIELDS, max_scan=2) == 1  # nothing header-like: row 1
    assert find_header_row([], FIELDS) == 1


def test_header_row_is_not_a_data_row_full_of_codes() -> None:
    rows = [
        [None, None, None],
        ["SO#", "Qty", "Status"],
        ["SO-1", 3, "open"],
        ["SO-2", 4, "open"],
    ]
    assert find_header_row(rows, FIELDS) == 2


def test_a_header_sharing_most_words_with_a_field_resembles_it() -> None:
    got = suggest_mapping(["Unit Price USD", "Order"], [[12.5, "x"]], FIELDS)
    assert got[0].field == "unit_price" and got[0].reason.startswith("the header resembles")
    assert 0.5 <= got[0].confidence < 0.95
    assert got[1].field is None  # one word of "Order date" is not enough
