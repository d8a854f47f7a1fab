"""Connectors read group membership from an IdP; one module per kind."""
