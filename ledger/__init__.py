"""The conversation ledger: append-only, ordered, hash-chained event streams.

Imports nothing of Threadline's outer packages and no web or media framework.
"""
