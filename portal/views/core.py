"""Core views: orders, inventory, customers, master data, audit trail, dashboard.

Every view writes through its record's service (see ``portal.crud``); permissions are the
shared names of ``portal.security``, so the browser and the API follow the same rules.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import BooleanField

import portal.security as security
from portal.extensions import appbuilder
from portal.models import (
    AuditEvent,
    Customer,
    JobRun,
    Product,
    StockLevel,
    Warehouse,
)
from portal.services import audit, catalog
from portal.views.base import ReadOnlyModelView, RecordHistoryMixin, ServiceModelView
from portal.views.pickers import Picked, PickerFilters

# -- Customers -----------------------------------------------------------------------------


CUSTOMER = Picked("Customer", Customer, "customer")


class CustomerAddressView(PickerFilters, ServiceModelView):
    service = catalog.customer_addresses
    class_permission_name = security.CUSTOMERS
    list_title = "Addresses"
    list_columns = ["customer", "label", "line1", "city", "postal_code", "country"]
    add_columns = [
        "customer",
        "label",
        "line1",
        "line2",
        "city",
        "region",
        "postal_code",
        "country",
        "is_default_ship_to",
    ]
    edit_columns = add_columns[1:]
    show_columns = add_columns
    search_columns = ["customer", "label", "line1", "city", "postal_code", "country"]
    quick_search_column = None
    pickers = {"customer": CUSTOMER}
    add_template = "picker_add.html"
    # A plain checkbox: a non-null boolean would otherwise be a required, i.e. forced, one.
    flags = {"is_default_ship_to": BooleanField("Default ship-to")}
    edit_form_extra_fields = {**ServiceModelView.edit_form_extra_fields, **flags}
    add_form_extra_fields = {"customer": CUSTOMER.field(required=True), **flags}


class CustomerContactView(PickerFilters, ServiceModelView):
    service = catalog.customer_contacts
    class_permission_name = security.CUSTOMERS
    list_title = "Contacts"
    list_columns = ["customer", "name", "email", "phone", "role"]
    add_columns = ["customer", "name", "email", "phone", "role", "receives_notifications"]
    edit_columns = add_columns[1:]
    show_columns = add_columns
    search_columns = ["customer", "name", "email", "role"]
    quick_search_column = None
    pickers = {"customer": CUSTOMER}
    add_template = "picker_add.html"
    flags = {"receives_notifications": BooleanField("Receives notifications", default=True)}
    edit_form_extra_fields = {**ServiceModelView.edit_form_extra_fields, **flags}
    add_form_extra_fields = {"customer": CUSTOMER.field(required=True), **flags}


class CustomerView(RecordHistoryMixin, ServiceModelView):
    service = catalog.customers
    audit_entity = "customer"
    class_permission_name = security.CUSTOMERS
    list_title = "Customers"
    list_columns = ["code", "name", "credit_limit", "credit_hold", "active", "payment_term"]
    add_columns = [
        "code",
        "name",
        "email",
        "phone",
        "credit_limit",
        "credit_hold",
        "active",
        "currency",
        "payment_term",
        "price_list",
    ]
    edit_columns = add_columns
    show_columns = [*add_columns, "created_at"]
    search_columns = ["code", "name", "credit_hold", "active"]
    related_views = [CustomerAddressView, CustomerContactView]
    show_template = "customer_show.html"  # + its orders and credit exposure


# -- Inventory -----------------------------------------------------------------------------


class ProductView(RecordHistoryMixin, ServiceModelView):
    service = catalog.products
    audit_entity = "product"
    class_permission_name = security.PRODUCTS
    list_title = "Products"
    list_columns = ["sku", "name", "unit", "pack_size", "list_price", "lead_time_days", "active"]
    add_columns = list_columns
    edit_columns = list_columns
    show_columns = [*list_columns, "version"]
    search_columns = ["sku", "name", "active"]


class WarehouseView(ServiceModelView):
    service = catalog.warehouses
    class_permission_name = security.WAREHOUSES
    list_title = "Warehouses"
    list_columns = ["code", "name", "priority", "active"]
    add_columns = list_columns
    edit_columns = list_columns
    show_columns = [*list_columns, "version"]


class StockLevelView(PickerFilters, ReadOnlyModelView):
    datamodel = SQLAInterface(StockLevel)
    class_permission_name = security.STOCK
    list_title = "Stock levels"
    list_columns = ["product", "warehouse", "on_hand", "allocated", "available", "reorder_point"]
    show_columns = [*list_columns, "version"]
    search_columns = ["product", "warehouse", "on_hand"]
    quick_search_column = None
    pickers = {
        "product": Picked("Product", Product, "product"),
        "warehouse": Picked("Warehouse", Warehouse, "warehouse"),
    }


# -- Finance (master data) -----------------------------------------------------------------


class PaymentTermView(ServiceModelView):
    service = catalog.payment_terms
    class_permission_name = security.MASTER_DATA
    list_title = "Payment terms"
    list_columns = ["code", "name", "days"]
    add_columns = edit_columns = show_columns = list_columns


class PriceListItemView(PickerFilters, ServiceModelView):
    service = catalog.price_list_items
    class_permission_name = security.MASTER_DATA
    list_title = "Price breaks"
    list_columns = ["price_list", "product", "min_quantity", "unit_price"]
    add_columns = show_columns = list_columns
    edit_columns = ["min_quantity", "unit_price"]
    search_columns = ["price_list", "product", "min_quantity"]
    quick_search_column = None
    pickers = {"product": Picked("Product", Product, "product")}
    add_template = "picker_add.html"
    add_form_extra_fields = {"product": Picked("Product", Product, "product").field(required=True)}


class PriceListView(ServiceModelView):
    service = catalog.price_lists
    class_permission_name = security.MASTER_DATA
    list_title = "Price lists"
    list_columns = ["name", "currency"]
    add_columns = edit_columns = show_columns = search_columns = list_columns
    related_views = [PriceListItemView]


# -- Audit and admin -----------------------------------------------------------------------


class AuditEventView(ReadOnlyModelView):
    datamodel = SQLAInterface(AuditEvent)
    class_permission_name = security.AUDIT
    method_permission_name = {**security.METHOD_PERMISSIONS, "verify": "verify"}
    include_route_methods = {"list", "show", "verify"}
    list_title = "Audit trail"
    list_template = "audit_event_list.html"
    list_columns = ["id", "occurred_at", "actor", "source", "entity", "entity_id", "action"]
    show_columns = [*list_columns, "changes", "prev_hash", "hash"]
    search_columns = ["actor", "source", "entity", "entity_id", "action", "occurred_at"]
    base_order = ("id", "desc")

    @expose("/verify")
    @has_access
    def verify(self):
        result = audit.verify()
        if result.ok:
            flash(
                f"Audit chain intact: {result.checked} events verified ({result.legacy} legacy "
                f"unkeyed), {result.checkpoints} checkpoints hold.",
                "success",
            )
        else:
            flash(f"Audit chain broken: {result.problem}", "danger")
        return redirect(url_for("AuditEventView.list"))


class JobRunView(ReadOnlyModelView):
    datamodel = SQLAInterface(JobRun)
    class_permission_name = security.JOBS
    list_title = "Background jobs"
    list_columns = ["job_id", "name", "status", "started_at", "finished_at", "error"]
    show_columns = [*list_columns, "result"]
    base_order = ("id", "desc")


class QueueView(BaseView):
    """Admin page listing the RQ queues and their depth."""

    route_base = "/queues"
    class_permission_name = security.JOBS
    method_permission_name = {"index": "read"}
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        from jobs.queue import queue_stats

        return self.render_template("queues.html", stats=queue_stats())


def register_core_views() -> None:
    """Add the core views: orders, inventory, customers, master data, audit, admin."""
    ab = appbuilder
    ab.add_view(StockLevelView, "Stock levels", icon="fa-cubes", category="Inventory")
    ab.add_view(ProductView, "Products", icon="fa-tag", category="Inventory")
    ab.add_view(WarehouseView, "Warehouses", icon="fa-building", category="Inventory")
    ab.add_view(CustomerView, "Customers", icon="fa-users", category="Customers")
    ab.add_view(CustomerAddressView, "Addresses", icon="fa-map-marker", category="Customers")
    ab.add_view(CustomerContactView, "Contacts", icon="fa-address-book", category="Customers")
    ab.add_view(PaymentTermView, "Payment terms", icon="fa-calendar", category="Finance")
    ab.add_view(PriceListView, "Price lists", icon="fa-usd", category="Finance")
    ab.add_view_no_menu(PriceListItemView)
    ab.add_view(AuditEventView, "Audit trail", icon="fa-shield", category="Audit")
    ab.add_view(JobRunView, "Background jobs", icon="fa-tasks", category="Admin")
    ab.add_view(QueueView, "Queues", icon="fa-server", category="Admin")
