"""Projections: pure folds over conversation streams and the global log. Import only `ledger`."""
