"""Exceptions of the project, grouped by what the caller does next.

    ReconcilerError
    ├── InvalidInputError         fix the value named in the message and try again
    ├── NotFoundError             the named object does not exist in this organization
    ├── ConflictError             the object exists already, or changed meanwhile
    ├── NotAllowedError           the organization's plan or state forbids the action
    ├── RunInProgressError        another run holds the organization; wait for it
    └── ConnectorError            the IdP could not be read; the run applies nothing
        ├── ConnectorConfigError      fix the connector configuration or credential
        ├── ConnectorPermissionError  grant the missing permission or scope
        ├── GroupNotFoundError        fix the mapping or the group in the IdP
        └── ConnectorUnavailableError retry later: timeout, 5xx or rate limit

SCIM requests turn these into SCIM Error responses in one handler; the command
line prints the message and exits with status 1.
"""


class ReconcilerError(Exception):
    """Base class: the message is a whole sentence that names the value and fix."""


class InvalidInputError(ReconcilerError):
    pass


class NotFoundError(ReconcilerError):
    pass


class ConflictError(ReconcilerError):
    pass


class NotAllowedError(ReconcilerError):
    pass


class RunInProgressError(ReconcilerError):
    pass


class ConnectorError(ReconcilerError):
    pass


class ConnectorConfigError(ConnectorError):
    pass


class ConnectorPermissionError(ConnectorError):
    pass


class GroupNotFoundError(ConnectorError):
    pass


class ConnectorUnavailableError(ConnectorError):
    pass
