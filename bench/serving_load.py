"""Serving under load: a SavedModel behind a REST server, hit by concurrent clients.

Usage:
  python bench/serving_load.py                         # the paper's sizes, random weights
  python bench/serving_load.py --model_dir=runs/ptb_vmf --threads=8 --requests=200

Exports the model (a trained run, or by default an untrained NVRNN of the
paper's sizes: embeddings 100, LSTM 400, latent 50, 10,000 words), loads it
once in a separate process that imports TensorFlow and tensorflow-text only
(`tests/rest_server.py`, a stand-in for TF Serving's REST predict API), and
sends it mixed requests (`encode`, `score`, `reconstruct`, `sample`, odd
strings included) from `--threads` client threads, `--requests` each. Every
answer is checked against the same request sent alone beforehand; prints
errors, mismatches, requests/s, p50/p99 latency and the machine's matmul
roofline measured in the same run. Exits 1 if any request failed or
differed (a correctness check; no timing is asserted).
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_vmfvae import config  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_vmfvae import export_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_vmfvae.data import text  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_vmfvae.models import NVRNN  # pylint: disable=g-import-not-at-top,wrong-import-position

SENTENCES = ["the company said it will buy shares", "stocks fell sharply on monday",
             "mr. smith said N analysts expect a loss", "", "naïve café — 東京",
             " ".join(["the"] * 300), "   ", "investors sold bonds"]


def untrained_run(folder, vocabulary_size=10000):
  """A run directory holding an NVRNN of the paper's sizes with random weights."""
  words = ["the", "company", "said", "it", "will", "buy", "shares", "stocks", "fell",
           "sharply", "on", "monday", "mr.", "smith", "N", "analysts", "expect", "a", "loss",
           "investors", "sold", "bonds"]
  words += [f"w{i}" for i in range(vocabulary_size - len(text.SPECIALS) - len(words))]
  vocabulary = text.Vocabulary(list(text.SPECIALS) + words)
  kwargs = dict(latent="vmf", concentration=35.0, tie_embeddings=True)
  model = NVRNN(vocabulary_size=len(vocabulary), seed=0, **kwargs)
  folder.mkdir(parents=True, exist_ok=True)
  config.ExperimentConfig(model=kwargs).save(folder / runs.CONFIG_FILE)
  vocabulary.save(folder / runs.VOCAB_FILE)
  runs.save_model(model, folder / runs.BEST_MODEL)
  return folder


def requests_for(thread, count):
  """`count` mixed request bodies for one client thread (deterministic)."""
  rng = np.random.default_rng(thread)
  bodies = []
  for _ in range(count):
    kind = rng.choice(["encode", "score", "reconstruct", "sample"], p=[0.3, 0.3, 0.25, 0.15])
    if kind == "sample":
      bodies.append({"signature_name": "sample",
                     "inputs": {"num_samples": int(rng.integers(1, 4)),
                                "seed": int(rng.integers(0, 5))}})
    else:
      chosen = rng.choice(len(SENTENCES), size=int(rng.integers(1, 4)))
      bodies.append({"signature_name": str(kind), "instances": [SENTENCES[i] for i in chosen]})
  return bodies


def post(url, body):
  request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                   headers={"Content-Type": "application/json"})
  with urllib.request.urlopen(request, timeout=300) as response:
    return json.loads(response.read())


def same(a, b):
  """Equal answers: strings exactly, numbers to float32 round-off."""
  if isinstance(a, dict):
    return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
  if isinstance(a, list):
    return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
  if isinstance(a, float) or isinstance(b, float):
    return bool(np.isclose(a, b, rtol=1e-5, atol=1e-5))
  return a == b


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_dir", help="A trained NVRNN run (default: untrained, paper sizes).")
  parser.add_argument("--threads", type=int, default=8)
  parser.add_argument("--requests", type=int, default=200, help="Requests per thread.")
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as tmp:
    model_dir = args.model_dir or untrained_run(pathlib.Path(tmp) / "run")
    path = export_lib.export(model_dir, pathlib.Path(tmp) / "exports", max_length=30)
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "rest_server.py"), str(path)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    try:
      url = server.stdout.readline().strip()
      if not url:
        raise SystemExit("The server process did not start.")
      plans = [requests_for(t, args.requests) for t in range(args.threads)]
      distinct = {json.dumps(b, sort_keys=True) for plan in plans for b in plan}
      expected = {key: post(url, json.loads(key)) for key in sorted(distinct)}

      def client(plan):
        results = []
        for body in plan:
          start = time.perf_counter()
          try:
            answer, error = post(url, body), None
          except (urllib.error.URLError, OSError, ValueError) as exc:
            answer, error = None, f"{type(exc).__name__}: {exc}"
          results.append((time.perf_counter() - start, body, answer, error))
        return results

      start = time.perf_counter()
      with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
        results = [r for rs in pool.map(client, plans) for r in rs]
      wall = time.perf_counter() - start
    finally:
      server.kill()
      server.wait()

  errors = [r for r in results if r[3] is not None]
  mismatches = [r for r in results if r[3] is None
                and not same(r[2], expected[json.dumps(r[1], sort_keys=True)])]
  latencies = np.array([r[0] for r in results]) * 1000.0
  common.print_machine_and_roofline()
  print(f"model: {args.model_dir or 'untrained NVRNN, paper sizes, tied softmax'}; "
        f"{args.threads} client threads x {args.requests} requests, "
        f"{len(distinct)} distinct requests.")
  print(f"{len(results)} requests in {wall:.1f} s: {len(results) / wall:.1f} requests/s; "
        f"latency p50 {np.percentile(latencies, 50):.0f} ms, "
        f"p99 {np.percentile(latencies, 99):.0f} ms, max {latencies.max():.0f} ms.")
  print(f"{len(errors)} errors, {len(mismatches)} answers that differ from the same "
        "request sent alone.")
  for _, body, _, error in errors[:3]:
    print(f"  error: {body['signature_name']}: {error}")
  for _, body, answer, _ in mismatches[:3]:
    print(f"  differs: {json.dumps(body)[:200]} -> {json.dumps(answer)[:200]}")
  sys.exit(1 if errors or mismatches else 0)


if __name__ == "__main__":
  main()
