"""SavedModel export: every signature reloads in a fresh process without
tf_vmfvae (with tensorflow-text's ops, as the model server has them), through
saved_model_cli, and as TF Serving requests; bad inputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae import config
from tf_vmfvae import export_lib
from tf_vmfvae import generate_lib
from tf_vmfvae import train_lib

import rest_server  # pylint: disable=g-bad-import-order  (tests/rest_server.py)

pytestmark = pytest.mark.skipif(not os.environ.get("TF_VMFVAE_DATA_DIR"),
                                reason="needs TF_VMFVAE_DATA_DIR (../shared/data)")

BAD_SENTENCES = ["", "qqqzz xxyyzz", " ".join(["the"] * 1200), "naïve café — 東京 ü",
                 "   \t  "]
NVRNN_CALLS = {
    "encode": {"sentences": ["the company said it will buy shares", "stocks fell"]},
    "score": {"sentences": ["the company said it will buy shares", "stocks fell"]},
    "reconstruct": {"sentences": ["the company said it will buy shares", "stocks fell"]},
    "sample": {"num_samples": 3, "seed": 7},
    "interpolate": {"sentence_a": "the company said", "sentence_b": "stocks fell sharply",
                    "steps": 4},
    "serving_default": {"sentences": ["mr. smith said"]},
}
NVDM_CALLS = {
    "encode_text": {"texts": ["god people think", "windows dos file", ""]},
}
# Runs in a fresh interpreter that imports tensorflow and tensorflow-text only.
_LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text
assert not any(m.startswith("tf_vmfvae") for m in sys.modules)
path, calls = sys.argv[1], json.loads(sys.argv[2])
signatures = tf.saved_model.load(path).signatures
dtypes = {name: {k: v.dtype for k, v in fn.structured_input_signature[1].items()}
          for name, fn in signatures.items()}
out = {}
for name, kwargs in calls.items():
  inputs = {k: tf.constant(v, dtype=dtypes[name][k]) for k, v in kwargs.items()}
  result = signatures[name](**inputs)
  out[name] = {k: (v.numpy().astype(str).tolist() if v.dtype == tf.string else v.numpy().tolist())
               for k, v in result.items()}
print("RESULT" + json.dumps(out))
"""


def _train(tmp_path_factory, experiment, name):
  model_dir = tmp_path_factory.mktemp(name)
  train_lib.train(experiment, model_dir, strategy=tf.distribute.get_strategy(), verbose=0)
  return model_dir


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(module, *args):
  run = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
  assert run.returncode == 0, run.stderr[-3000:]
  return run.stdout


@pytest.fixture(scope="module")
def nvrnn_export(tmp_path_factory):
  """A model trained with configs/smoke.flags, exported with the export binary."""
  model_dir = tmp_path_factory.mktemp("smoke")
  export_dir = tmp_path_factory.mktemp("exports")
  _cli("tf_vmfvae.train", "--flagfile=configs/smoke.flags", f"--model_dir={model_dir}")
  out = _cli("tf_vmfvae.export", f"--model_dir={model_dir}", f"--export_dir={export_dir}",
             "--max_length=12")
  for name in ("encode", "score", "reconstruct", "sample", "interpolate", "serving_default"):
    assert f"  {name}(" in out
  return model_dir, export_dir, export_dir / "1"


def _in_memory(module, calls):
  endpoints = module.endpoints()
  out = {}
  for name, kwargs in calls.items():
    # In memory, the functions take their inputs by position, in spec order;
    # the first endpoint is also `serving_default`.
    fn, specs = endpoints[next(iter(endpoints)) if name == "serving_default" else name]
    assert {spec.name for spec in specs} == set(kwargs), name
    result = fn(*[tf.constant(kwargs[spec.name], spec.dtype) for spec in specs])
    out[name] = {k: (v.numpy().astype(str).tolist() if v.dtype == tf.string else
                     v.numpy().tolist()) for k, v in result.items()}
  return out


def _fresh_process(path, calls):
  run = subprocess.run([sys.executable, "-c", _LOADER, str(path), json.dumps(calls)],
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
  assert run.returncode == 0, run.stderr[-3000:]
  return json.loads(run.stdout.split("RESULT", 1)[1])


def _assert_same(got, expected):
  """Exactly equal: strings, and floats to the bit (the same graph on the same CPU)."""
  assert got.keys() == expected.keys()
  for name in expected:
    assert got[name].keys() == expected[name].keys(), name
    for key in expected[name]:
      assert got[name][key] == expected[name][key], (name, key)


def test_version_directory_layout(nvrnn_export, tmp_path):
  model_dir, export_dir, path = nvrnn_export
  assert path.parent == export_dir and path.name == "1"
  assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
  assert export_lib.next_version_dir(export_dir).name == "2"


def test_every_signature_in_a_fresh_process_equals_in_memory(nvrnn_export):
  model_dir, _, path = nvrnn_export
  expected = _in_memory(export_lib.serving_module(model_dir, max_length=12), NVRNN_CALLS)
  got = _fresh_process(path, NVRNN_CALLS)
  _assert_same(got, expected)
  assert len(got["sample"]["sentences"]) == 3
  assert len(got["interpolate"]["sentences"]) == 4
  direction = np.asarray(got["encode"]["mean_direction"])
  np.testing.assert_allclose(np.linalg.norm(direction, axis=-1), 1.0, atol=1e-5)
  assert got["score"]["tokens"] == [8, 3]
  assert all(n > 0 for n in got["score"]["nll"])


def test_bad_inputs_answer_without_crashing(nvrnn_export):
  _, _, path = nvrnn_export
  calls = {"encode": {"sentences": BAD_SENTENCES}, "score": {"sentences": BAD_SENTENCES},
           "reconstruct": {"sentences": BAD_SENTENCES}}
  got = _fresh_process(path, calls)
  assert np.asarray(got["encode"]["mean_direction"]).shape == (5, 8)
  assert np.all(np.isfinite(got["score"]["nll"]))
  assert got["score"]["tokens"][2] == 31  # 1,200 words are cut to max_len=30, + <eos>.
  assert got["score"]["tokens"][0] == 1 and got["score"]["tokens"][4] == 1
  assert len(got["reconstruct"]["sentences"]) == 5
  empty = _fresh_process(path, {"encode": {"sentences": []}, "score": {"sentences": []},
                                "sample": {"num_samples": 0, "seed": 1}})
  assert np.asarray(empty["encode"]["mean_direction"]).reshape(-1, 8).shape == (0, 8)
  assert empty["score"]["nll"] == [] and empty["sample"]["sentences"] == []


def test_saved_model_cli_runs_every_signature(nvrnn_export):
  _, _, path = nvrnn_export
  # saved_model_cli with tensorflow-text's ops registered first.
  command = [sys.executable, "-c", "import sys, tensorflow_text; "
             "from tensorflow.python.tools import saved_model_cli; "
             "sys.argv[0] = 'saved_model_cli'; saved_model_cli.main()"]
  sentences = "sentences=['the company said', 'stocks fell']"
  cases = {  # saved_model_cli takes Python literals only.
      "encode": (sentences, "mean_direction"), "score": (sentences, "nll"),
      "reconstruct": (sentences, "sentences"), "serving_default": (sentences, "concentration"),
      "sample": ("num_samples=2;seed=3", "sentences"),
      "interpolate": ("sentence_a=b'the company said';sentence_b=b'stocks fell';steps=3",
                      "sentences"),
  }
  for signature, (inputs, output) in cases.items():
    run = subprocess.run(
        command + ["run", "--dir", str(path), "--tag_set", "serve", "--signature_def",
                   signature, "--input_exprs", inputs],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (signature, run.stderr[-3000:])
    assert f"Result for output key {output}" in run.stdout, signature


def test_tf_serving_rest_and_grpc_requests_match_the_signatures(nvrnn_export):
  _, _, path = nvrnn_export
  signatures = tf.saved_model.load(str(path)).signatures
  with rest_server.serve(path, "nvrnn") as url:
    _check_requests(signatures, url)


def _check_requests(signatures, url):
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  for name, kwargs in NVRNN_CALLS.items():
    specs = signatures[name].structured_input_signature[1]
    # REST, over HTTP to a handler that decodes bodies as TF Serving's REST
    # API specifies: row format for batched inputs, columnar for scalars.
    batched = all(spec.shape.rank == 1 for spec in specs.values())
    rest = ({"signature_name": name, "instances": next(iter(kwargs.values()))} if batched
            else {"signature_name": name, "inputs": kwargs})
    status, answer = rest_server.post(url, rest)
    assert status == 200, answer
    direct = signatures[name](**{k: tf.constant(v, specs[k].dtype) for k, v in kwargs.items()})
    expected = {k: rest_server.to_json(v) for k, v in direct.items()}
    if batched:  # One prediction per row: a value, or an object of the outputs.
      rows = answer["predictions"]
      served = ({k: [row[k] for row in rows] for k in expected} if len(expected) > 1
                else {next(iter(expected)): rows})
    else:
      served = answer["outputs"] if len(expected) > 1 else {next(iter(expected)): answer["outputs"]}
    assert set(served) == set(expected), name
    for key, value in expected.items():
      if direct[key].dtype == tf.string:
        assert served[key] == value, (name, key)
      else:
        np.testing.assert_allclose(served[key], value, rtol=1e-6, atol=1e-6, err_msg=name)
    # gRPC: a PredictRequest whose tensors match the signature's dtypes and ranks.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "nvrnn"
    request.model_spec.signature_name = name
    for key, value in kwargs.items():
      request.inputs[key].CopyFrom(tf.make_tensor_proto(value, dtype=specs[key].dtype))
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert set(request.inputs) == set(specs)
    decoded = {}
    for key, proto in request.inputs.items():
      assert tf.dtypes.as_dtype(proto.dtype) == specs[key].dtype, (name, key)
      decoded[key] = tf.make_ndarray(proto)
      assert specs[key].shape.is_compatible_with(decoded[key].shape), (name, key)
    result = signatures[name](**{k: tf.constant(v, specs[k].dtype) for k, v in decoded.items()})
    assert result  # The request runs as the server would run it.


def test_nvdm_signatures_in_a_fresh_process(tmp_path_factory):
  experiment = config.ExperimentConfig(
      family="nvdm", data=config.DataConfig(dataset="20news"),
      model=dict(latent="vmf", concentration=50.0, latent_dim=8, hidden_dim=32),
      train=config.TrainConfig(optimizer="adam", learning_rate=0.003, batch_size=64, epochs=1,
                               log_latent_usage=False,
                               steps_per_epoch=10))
  model_dir = _train(tmp_path_factory, experiment, "nvdm")
  path = export_lib.export(model_dir, tmp_path_factory.mktemp("nvdm_exports"))
  counts = np.zeros((2, 2000), np.float32)
  counts[0, [3, 10, 50]] = [2, 1, 4]
  counts[1, [7, 8]] = [1, 1]
  calls = {**NVDM_CALLS, "encode": {"counts": counts.tolist()},
           "score": {"counts": counts.tolist()}}
  expected = _in_memory(export_lib.serving_module(model_dir), calls)
  got = _fresh_process(path, calls)
  _assert_same(got, expected)
  assert got["score"]["tokens"] == [7.0, 2.0]
  assert np.asarray(got["encode_text"]["mean_direction"]).shape == (3, 8)


def test_generate_cli_prints_readable_output(nvrnn_export):
  model_dir, _, _ = nvrnn_export

  def run(*args):
    return _cli("tf_vmfvae.generate", f"--model_dir={model_dir}", "--max_length=10", *args)

  assert run("sample", "--num_samples=2", "--decoder=sample").count(". ") >= 2
  out = run("reconstruct", "--sentences=the company said", "--decoder=beam", "--beam_width=3")
  assert "in:  the company said" in out and "out:" in out
  assert len([l for l in run("interpolate", "--sentence_a=the company said",
                             "--sentence_b=stocks fell", "--steps=3").splitlines()
              if l.strip()]) == 3


def test_generator_library_matches_the_export(nvrnn_export):
  model_dir, _, path = nvrnn_export
  generator = generate_lib.Generator(model_dir, max_length=12)
  sentences = ["the company said it will buy shares", "stocks fell"]
  exported = tf.saved_model.load(str(path)).signatures["reconstruct"](
      sentences=tf.constant(sentences))["sentences"].numpy().astype(str).tolist()
  assert generator.reconstruct(sentences) == exported
  with pytest.raises(ValueError, match="`decoder` must be one of"):
    generator.reconstruct(sentences, method="nucleus")


def test_rnnlm_exports_score_and_sample(tmp_path_factory):
  experiment = config.ExperimentConfig(
      data=config.DataConfig(dataset="ptb", max_vocab_size=300, max_len=20),
      model=dict(latent="none", embedding_dim=8, hidden_dim=16),
      train=config.TrainConfig(optimizer="adam", learning_rate=0.003, batch_size=32, epochs=1,
                               log_latent_usage=False,
                               steps_per_epoch=5))
  model_dir = _train(tmp_path_factory, experiment, "rnnlm")
  path = export_lib.export(model_dir, tmp_path_factory.mktemp("rnnlm_exports"), max_length=8)
  calls = {"score": {"sentences": ["the company said", ""]},
           "sample": {"num_samples": 2, "seed": 3}}
  got = _fresh_process(path, calls)
  _assert_same(got, _in_memory(export_lib.serving_module(model_dir, max_length=8), calls))
  assert got["score"]["kl"] == [0.0, 0.0] and got["score"]["nll"] == got["score"]["recon"]
  assert len(got["sample"]["sentences"]) == 2
  names = set(tf.saved_model.load(str(path)).signatures)
  assert names == {"score", "sample", "serving_default"}
