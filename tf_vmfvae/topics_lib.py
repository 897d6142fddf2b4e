"""Topic inspection of a trained NVDM: decode the centres of the posterior codes.

The documents' posterior modes (mean directions for spherical latents, means
for the Gaussian) are clustered with k-means (spherical k-means, on cosine,
for the spherical latents); each centre is decoded and its most probable
words are listed, with the cluster's size and its most common label.
"""

import dataclasses
from typing import List

import numpy as np
import tensorflow as tf

from tf_vmfvae import errors
from tf_vmfvae import runs


@dataclasses.dataclass
class Topic:
  size: int
  top_label: int
  label_share: float
  words: List[str]


def kmeans(points, num_clusters, spherical, iterations=50, seed=0):
  """Plain (or spherical) k-means with k-means++ seeding; returns centres, labels."""
  rng = np.random.default_rng(seed)
  points = np.asarray(points, np.float64)
  if num_clusters > len(points):
    raise errors.InvalidValueError(
        f"`num_topics` must be <= the number of documents ({len(points)}), "
        f"got {num_clusters}.")
  centres = [points[rng.integers(len(points))]]
  for _ in range(1, num_clusters):
    distance = np.min([np.sum((points - c) ** 2, axis=1) for c in centres], axis=0)
    centres.append(points[rng.choice(len(points), p=distance / distance.sum())])
  centres = np.array(centres)
  for _ in range(iterations):
    if spherical:
      labels = np.argmax(points @ centres.T, axis=1)
    else:
      labels = np.argmin(((points[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    for k in range(num_clusters):
      members = points[labels == k]
      if len(members):
        centres[k] = members.mean(0)
    if spherical:
      centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
  return centres, labels


def topics(model_dir, num_topics=10, num_words=10, split="train", max_documents=None, seed=0):
  """Returns a list of `Topic`, largest cluster first."""
  model, experiment = runs.load_trained(model_dir)
  if experiment.family != "nvdm":
    raise errors.InvalidValueError(
        f"Topics need an NVDM model; {model_dir} holds {experiment.family!r}.")
  splits = runs.load_data(experiment, splits=[split])
  codes = []
  for batch in splits.dataset(split, 500):
    params = model.latent.posterior_parameters(model.encode_features(batch))
    codes.append(model.latent.mode(params).numpy())
  codes = np.concatenate(codes)[:max_documents]
  labels = splits.documents[split].labels[:len(codes)]
  centres, assignment = kmeans(codes, num_topics, model.latent.is_spherical, seed=seed)
  logits = model.decoder({"z": tf.constant(centres, tf.float32)}).numpy()
  result = []
  for k in np.argsort(-np.bincount(assignment, minlength=num_topics)):
    members = labels[assignment == k]
    counts = np.bincount(members) if len(members) else np.array([0])
    top = np.argsort(-logits[k])[:num_words]
    result.append(Topic(size=int(len(members)), top_label=int(np.argmax(counts)),
                        label_share=float(counts.max() / max(len(members), 1)),
                        words=[splits.vocabulary.words[i] for i in top]))
  return result


def format_topics(found):
  lines = []
  for i, topic in enumerate(found, start=1):
    lines.append(f"topic {i:2d} ({topic.size:5d} docs, label {topic.top_label} "
                 f"{100 * topic.label_share:3.0f}%): {' '.join(topic.words)}")
  return "\n".join(lines)
