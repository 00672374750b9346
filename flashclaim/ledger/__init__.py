"""Downstream of the stream: the ledger consumer, the SQL ledger, reconciliation."""
