"""Keep dashboard users and roles in line with the identity provider."""

__version__ = "0.1.0"
