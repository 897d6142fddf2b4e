"""What every binary shares: a user's mistake ends as one line, not a traceback.

Each binary ends with `cli.run(main)` instead of `absl.app.run(main)`. The
library raises a `tf_vmfvae.errors.UserError` for a mistake the user can fix
(a bad value, missing data, no trained model, a run locked by another
process) with a message that names the flag or path and what to do; this
wrapper prints that message as `error: ...` on stderr and exits with status
1. absl's own flag errors keep their usage message (status 1, or 2 for a
`UsageError`). Every other exception, a `ValueError` of our own code
included, is a bug and keeps its traceback, as does every error when
`TF_VMFVAE_TRACEBACK=1`. Ctrl-C ends as one line (the library's message,
e.g. how to resume a training) and exit status 130.

Importing this module imports neither TensorFlow nor Keras.
"""

import atexit
import os
import re
import sys
import threading

from absl import app

from tf_vmfvae import config
from tf_vmfvae import errors

TRACEBACK_ENV_VAR = "TF_VMFVAE_TRACEBACK"

# A line TensorFlow's C++ code logs before absl logging is initialised:
# "I0000 00:00:1796598506.193774   24975 port.cc:153] text".
_NATIVE_LINE = re.compile(r"^([IWE])0000 00:00:[0-9.]+ +[0-9]+ [\w.]+:[0-9]+\] (.*)")
_NATIVE_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"
# Native errors that say nothing wrong about a CPU machine.
_HARMLESS_NATIVE_ERRORS = ("failed call to cuInit", "oneDNN supports DT_INT64 only")


def is_native_noise(line):
  """Whether a stderr line is TensorFlow start-up chatter, not a problem.

  Example:
  >>> is_native_noise("E0000 00:00:1796598509.477021   24975 cuda_platform.cc:52] "
  ...                 "failed call to cuInit: INTERNAL: CUDA error")
  True
  >>> is_native_noise("E0000 00:00:1796598509.477021   24975 x.cc:1] out of memory")
  False
  >>> is_native_noise("I1206 23:08:36.223383 140328644971392 text.py:64] kept 41931 sentences")
  False
  """
  if line.startswith(_NATIVE_BANNER):
    return True
  match = _NATIVE_LINE.match(line)
  if not match:
    return False
  severity, text = match.groups()
  return severity in "IW" or text.startswith(_HARMLESS_NATIVE_ERRORS)


def _asks_for_verbosity(argv):
  for i, arg in enumerate(argv):
    for name in ("--verbosity", "-v"):
      if arg == name and i + 1 < len(argv):
        arg = f"{name}={argv[i + 1]}"
      if arg.startswith(name + "="):
        try:
          return int(arg.split("=", 1)[1]) >= 1
        except ValueError:
          return False
  return False


def quiet_native_logs(argv=None):
  """Filters TensorFlow's start-up chatter out of this process's stderr.

  Call it before TensorFlow is imported. File descriptor 2 becomes a pipe
  that a thread copies to the real stderr, line by line, leaving out the
  lines `is_native_noise` names; at exit the pipe is drained. Does nothing
  when `argv` (default `sys.argv`) asks for `--verbosity=1` or more.
  """
  if _asks_for_verbosity(sys.argv if argv is None else argv):
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's later INFO and WARNING.
  sys.stderr.flush()
  real_stderr = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)

  def copy():
    with os.fdopen(read_end, "rb") as lines, os.fdopen(real_stderr, "wb", buffering=0) as out:
      for line in lines:
        if not is_native_noise(line.decode("utf-8", "replace")):
          out.write(line)

  thread = threading.Thread(target=copy, name="stderr-filter", daemon=True)
  thread.start()

  def drain():
    sys.stderr.flush()
    saved = os.dup(real_stderr)
    os.dup2(saved, 2)  # The pipe's last writer closes: the thread sees its end.
    os.close(saved)
    thread.join(timeout=5)

  atexit.register(drain)


def user_error_message(error):
  """The one line printed for a user's mistake."""
  text = " ".join(str(error).split()) or type(error).__name__
  if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
    text = f"{text}: {error.filename}"
  return f"error: {text}"


def _guarded(main):
  def wrapped(argv):
    try:
      return main(argv)
    except KeyboardInterrupt as error:
      if os.environ.get(TRACEBACK_ENV_VAR) == "1":
        raise
      print(str(error) or "Interrupted.", file=sys.stderr)
      sys.exit(130)
    except errors.UserError as error:
      if os.environ.get(TRACEBACK_ENV_VAR) == "1":
        raise
      print(user_error_message(error), file=sys.stderr)
      sys.exit(1)
  return wrapped


def expand_flagfiles(argv):
  """`argv` with every `--flagfile=F` replaced by the flags F holds, recursively.

  F is a path, or the name of a shipped flagfile (`--flagfile=ptb` is
  `configs/ptb.flags` of the checkout or of the installed package), also
  inside flagfiles. Blank lines and lines starting with `#` or `//` are
  skipped, as absl does.

  Example:
  >>> "--kappa=35" in expand_flagfiles(["train", "--flagfile=ptb"])
  True
  """
  expanded = []
  for arg in argv:
    if not arg.startswith("--flagfile="):
      expanded.append(arg)
      continue
    path = config.flagfile_path(arg.split("=", 1)[1])
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    expanded += expand_flagfiles(
        [line for line in lines if line and not line.startswith(("#", "//"))])
  return expanded


def run(main):
  """`absl.app.run(main)`, with user errors as one line and exit status 1.

  Flagfiles are expanded first (`expand_flagfiles`), so that `--flagfile=ptb`
  names a shipped flagfile.
  """
  try:
    argv = expand_flagfiles(sys.argv)
  except errors.UserError as error:
    print(user_error_message(error), file=sys.stderr)
    sys.exit(1)
  app.run(_guarded(main), argv=argv)
