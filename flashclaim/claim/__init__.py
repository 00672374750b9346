"""Deciding a claim: who claims, the gate that answers from memory, coalescing,
and the claim service that puts them together."""
