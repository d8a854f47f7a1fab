"""Admin access: operator keys, organization admin credentials, console
sessions and sign-in throttling."""
