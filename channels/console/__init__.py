"""The operator console: conversation list, timeline and audit view, handoff dashboard.

Served by the same server under `/console`; only operators (accounts with argon2-hashed
passwords, session cookie) get in. Visitor tokens and API keys never open it.
"""
