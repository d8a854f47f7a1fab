"""A loopback IdP simulator: the Okta, Microsoft Graph and OneLogin APIs served
from a directory file, with real paging, rate limits, tokens and injectable
faults. Trials, tests and benchmarks use it instead of a real IdP account."""
