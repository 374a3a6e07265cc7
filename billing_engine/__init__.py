"""Tariffs, consumption, invoices, ledger, dunning and the billing scheduler."""
