"""Finance models: invoices, payments, credit memos, disputes and exports."""

__all__: list[str] = []
