"""Core REST resources: customers and their contacts, products, warehouses, stock levels,
audit events."""

from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface

import portal.security as security
from portal.api.base import ResourceApi, ServiceResourceApi
from portal.extensions import appbuilder
from portal.models import AuditEvent, StockLevel
from portal.services import catalog


class CustomerApi(ServiceResourceApi):
    resource_name = "customer"
    service = catalog.customers
    class_permission_name = security.CUSTOMERS
    list_columns = [
        "id",
        "code",
        "name",
        "email",
        "credit_limit",
        "credit_hold",
        "active",
        "currency",
        "payment_term_id",
        "price_list_id",
        "version",
    ]
    show_columns = [*list_columns, "phone", "created_at"]
    add_columns = [c for c in show_columns if c not in ("id", "version", "created_at")]
    edit_columns = [*add_columns, "version"]


class CustomerContactApi(ServiceResourceApi):
    resource_name = "customer_contact"
    service = catalog.customer_contacts
    class_permission_name = security.CUSTOMERS
    list_columns = ["id", "customer_id", "name", "email", "phone", "role", "receives_notifications"]
    show_columns = list_columns
    add_columns = list_columns[1:]
    edit_columns = list_columns[2:]


class ProductApi(ServiceResourceApi):
    resource_name = "product"
    service = catalog.products
    class_permission_name = security.PRODUCTS
    list_columns = [
        "id",
        "sku",
        "name",
        "unit",
        "pack_size",
        "list_price",
        "lead_time_days",
        "active",
        "version",
    ]
    show_columns = list_columns
    add_columns = [c for c in list_columns if c not in ("id", "version")]
    edit_columns = [*add_columns, "version"]


class WarehouseApi(ServiceResourceApi):
    resource_name = "warehouse"
    service = catalog.warehouses
    class_permission_name = security.WAREHOUSES
    list_columns = ["id", "code", "name", "priority", "active", "version"]
    show_columns = list_columns
    add_columns = ["code", "name", "priority", "active"]
    edit_columns = [*add_columns, "version"]


class StockLevelApi(ResourceApi):
    resource_name = "stock_level"
    datamodel = SQLAInterface(StockLevel)
    class_permission_name = security.STOCK
    list_columns = [
        "id",
        "product_id",
        "warehouse_id",
        "on_hand",
        "allocated",
        "available",
        "reorder_point",
        "version",
    ]
    show_columns = list_columns
    order_columns = ["id", "product_id", "warehouse_id", "on_hand", "allocated"]


class AuditEventApi(ResourceApi):
    resource_name = "audit_event"
    datamodel = SQLAInterface(AuditEvent)
    class_permission_name = security.AUDIT
    list_columns = [
        "id",
        "occurred_at",
        "actor",
        "source",
        "entity",
        "entity_id",
        "action",
        "changes",
        "prev_hash",
        "hash",
    ]
    show_columns = list_columns
    order_columns = ["id", "occurred_at", "actor", "entity", "action"]
    base_order = ("id", "desc")


def register_core_apis() -> None:
    """Add the core resources: master data, stock, audit events."""
    for api in (
        CustomerApi,
        CustomerContactApi,
        ProductApi,
        WarehouseApi,
        StockLevelApi,
        AuditEventApi,
    ):
        appbuilder.add_api(api)
