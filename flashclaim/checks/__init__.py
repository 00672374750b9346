"""Judging the promises: no oversell, nothing lost or duplicated."""
