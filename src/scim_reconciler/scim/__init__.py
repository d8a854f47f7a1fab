"""The inbound SCIM 2.0 service (RFC 7643 and RFC 7644)."""
