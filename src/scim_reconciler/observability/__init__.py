"""Logs and Prometheus metrics of the service: what operators watch it by."""
