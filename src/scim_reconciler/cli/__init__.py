"""The ``scim-reconciler`` command line."""
