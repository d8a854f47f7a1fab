"""Reconciliation: read the IdP's truth, plan the changes, guard them, apply them.

The core of this package (model, connectors.base, connectors.directory, snapshot,
plan, guards) is plain Python: it imports nothing from the web layer, HTTP
clients or the database, so it can be read and tested on its own. The store
side (apply, runs, locks) and the scheduler are adapters around it.
"""
