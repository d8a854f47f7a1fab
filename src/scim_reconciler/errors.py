"""Exceptions of the project, grouped by what the caller does next.

    ReconcilerError
    ├── InvalidInputError     fix the value named in the message and try again
    ├── NotFoundError         the named object does not exist in this organization
    ├── ConflictError         the object exists already, or changed meanwhile
    └── NotAllowedError       the organization's plan or state forbids the action

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
