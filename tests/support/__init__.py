"""Helpers shared by the tests: databases, organizations and server processes."""
