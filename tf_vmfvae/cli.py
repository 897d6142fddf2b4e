"""What every binary shares: a user's mistake ends as one line, not a traceback.

Each binary ends with `cli.run(main)` instead of `absl.app.run(main)`. The
library raises `ValueError` (a bad value: flag, config, corpus line) or an
`OSError` (missing data, no trained model, a directory that cannot be
written, a lost worker) with a message that names the flag or path and what
to do; when tf_vmfvae's own code raised it, this wrapper prints that message
as `error: ...` on stderr and exits with status 1. absl's own flag errors
keep their usage message (status 1, or 2 for a `UsageError`). The same
types raised inside TensorFlow or Keras, and anything else, are bugs and
keep their traceback, as does every error when `TF_VMFVAE_TRACEBACK=1`.
Ctrl-C ends as one line (the library's message, e.g. how to resume a
training) and exit status 130.

Importing this module imports neither TensorFlow nor Keras.
"""

import os
import pathlib
import sys
import traceback

from absl import app

TRACEBACK_ENV_VAR = "TF_VMFVAE_TRACEBACK"
# The errors the library raises for a user's mistakes. `FileNotFoundError`,
# `PermissionError`, `NotADirectoryError`, `IsADirectoryError` and
# `FileExistsError` are `OSError`s; `CorpusError` is a `ValueError`.
USER_ERRORS = (ValueError, OSError)


def user_error_message(error):
  """The one line printed for a user's mistake."""
  text = " ".join(str(error).split()) or type(error).__name__
  if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
    text = f"{text}: {error.filename}"
  return f"error: {text}"


_PACKAGE = pathlib.Path(__file__).resolve().parent


def raised_by_this_package(error):
  """Whether the innermost Python frame of `error`'s traceback is tf_vmfvae's."""
  frames = traceback.extract_tb(error.__traceback__)
  return bool(frames) and pathlib.Path(frames[-1].filename).resolve().is_relative_to(_PACKAGE)


def _guarded(main):
  def wrapped(argv):
    try:
      return main(argv)
    except KeyboardInterrupt as error:
      if os.environ.get(TRACEBACK_ENV_VAR) == "1":
        raise
      print(str(error) or "Interrupted.", file=sys.stderr)
      sys.exit(130)
    except USER_ERRORS as error:
      if os.environ.get(TRACEBACK_ENV_VAR) == "1" or not raised_by_this_package(error):
        raise
      print(user_error_message(error), file=sys.stderr)
      sys.exit(1)
  return wrapped


def run(main):
  """`absl.app.run(main)`, with user errors as one line and exit status 1."""
  app.run(_guarded(main))
