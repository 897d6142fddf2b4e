"""A stand-in for TF Serving's REST predict API, on 127.0.0.1, for tests.

It decodes request bodies as TF Serving's REST API specifies
(`POST /v1/models/<name>[/versions/<v>]:predict`):
- row format, `{"signature_name": s, "instances": [...]}`: each instance is
  a value (a signature with one input) or an object of named inputs; the
  answer is `{"predictions": [...]}`, one value per row for a single output,
  else one object per row;
- columnar format, `{"signature_name": s, "inputs": {...} or value}`: the
  answer is `{"outputs": {...}}` (or the value, for a single output).
Strings travel as UTF-8 JSON strings. Like the stock model server, it has
the tensorflow-text ops. It runs the SavedModel's signature as
the model server would, and is only as true as that reading of the spec.
"""

import contextlib
import http.server
import json
import re
import threading
import urllib.error
import urllib.request

import numpy as np
import tensorflow as tf
import tensorflow_text  # pylint: disable=unused-import  (registers the ops the model server links in)


def to_json(value):
  """A tensor as JSON values (strings decoded from UTF-8)."""
  array = value.numpy()
  if value.dtype == tf.string:
    return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array).tolist() if (
        array.ndim) else array.decode("utf-8")
  return array.tolist()


def predict(signatures, body):
  """Answers one predict request body (a dict) with the SavedModel's signatures."""
  signature = signatures[body.get("signature_name", "serving_default")]
  specs = signature.structured_input_signature[1]
  if "instances" in body:
    rows = body["instances"]
    if len(specs) == 1 and not (rows and isinstance(rows[0], dict)):
      (name,) = specs
      rows = [{name: row} for row in rows]
    inputs = {name: [row[name] for row in rows] for name in specs}
  else:
    inputs = body["inputs"]
    if not isinstance(inputs, dict):
      (name,) = specs
      inputs = {name: inputs}
  outputs = signature(**{name: tf.constant(value, specs[name].dtype)
                         for name, value in inputs.items()})
  outputs = {name: to_json(value) for name, value in outputs.items()}
  if "instances" in body:
    if len(outputs) == 1:
      return {"predictions": next(iter(outputs.values()))}
    count = len(next(iter(outputs.values())))
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}
  return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}


@contextlib.contextmanager
def serve(path, model_name="model"):
  """Serves the SavedModel at `path`; yields the base URL of its predict endpoint."""
  signatures = tf.saved_model.load(str(path)).signatures
  route = re.compile(rf"^/v1/models/{model_name}(/versions/\d+)?:predict$")

  class Handler(http.server.BaseHTTPRequestHandler):

    def do_POST(self):  # pylint: disable=invalid-name
      if not route.match(self.path):
        self.send_error(404)
        return
      body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
      try:
        status, answer = 200, predict(signatures, body)
      except (KeyError, ValueError, TypeError, tf.errors.OpError) as error:
        status, answer = 400, {"error": str(error)}
      data = json.dumps(answer).encode("utf-8")
      self.send_response(status)
      self.send_header("Content-Type", "application/json")
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def log_message(self, *args):
      del args

  with local_server(Handler) as base:
    yield f"{base}/v1/models/{model_name}:predict"


@contextlib.contextmanager
def local_server(handler):
  """Runs an `http.server` handler class on 127.0.0.1 (a free port) in a thread.

  Yields the base URL, "http://127.0.0.1:<port>"; shuts the server down after.
  """
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}"
  finally:
    server.shutdown()
    server.server_close()


def post(url, body, timeout=60):
  """POSTs a JSON body; returns (status, decoded JSON answer)."""
  request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                   headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as error:
    text = error.read().decode("utf-8", "replace")
    try:
      return error.code, json.loads(text)
    except json.JSONDecodeError:
      return error.code, {"error": text}


def main():
  """`python tests/rest_server.py SAVED_MODEL [NAME]`: serves until killed.

  Prints the predict URL on stdout once the model is loaded. The process
  imports TensorFlow and tensorflow-text only, as a model server would.
  """
  import sys  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  path, name = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "model")
  with serve(path, name) as url:
    print(url, flush=True)
    while True:
      time.sleep(3600)


if __name__ == "__main__":
  main()

