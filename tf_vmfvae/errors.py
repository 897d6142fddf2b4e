"""The exceptions a user can fix, and only those.

Every error the library raises for a user's mistake (a bad flag, config
field or constructor argument, a missing corpus or trained model, a run
directory that is locked or damaged) derives from `UserError` and from the
built-in type a caller would catch (`ValueError`, `FileNotFoundError`, ...).
The binaries (`tf_vmfvae.cli`) print a `UserError` as one line and exit with
status 1; any other exception is a bug and keeps its traceback, even a
`ValueError` raised inside tf_vmfvae (an `int("x")` in our own code).

Importing this module imports nothing else.

Example:
>>> try:
...   raise InvalidValueError("`kappa` must be > 0, got -3.")
... except ValueError as error:
...   isinstance(error, UserError)
True
"""


class UserError(Exception):
  """Base of the errors a user can fix; its message says how."""


class InvalidValueError(UserError, ValueError):
  """A value out of its range: a flag, config field, argument or corpus line."""


class MissingFileError(UserError, FileNotFoundError):
  """A file or folder the user named (or the library needs) does not exist."""


class UnusablePathError(UserError, OSError):
  """A path exists but cannot be used: not a folder, or not writable."""
