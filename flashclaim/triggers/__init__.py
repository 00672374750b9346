"""Grants triggered by what users do: events in, rules, and the grants they submit."""
