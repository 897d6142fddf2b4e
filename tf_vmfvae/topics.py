r"""Prints the topics of a trained NVDM: top words of decoded latent cluster centres.

Usage:
  python -m tf_vmfvae.topics --model_dir=runs/20news_vmf --num_topics=20
"""


from absl import flags  # pylint: disable=g-import-not-at-top

from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  cli.quiet_native_logs()  # Before TensorFlow is imported.


_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A trained NVDM model directory.")
_NUM_TOPICS = flags.DEFINE_integer("num_topics", 10, "Clusters of posterior codes.")
_NUM_WORDS = flags.DEFINE_integer("num_words", 10, "Top words shown per topic.")
_SPLIT = flags.DEFINE_enum("split", "train", ["train", "valid", "test"], "Documents to cluster.")
_SEED = flags.DEFINE_integer("seed", 0, "k-means seed.")

flags.mark_flag_as_required("model_dir")


def main(argv):
  del argv
  from tf_vmfvae import topics_lib  # pylint: disable=g-import-not-at-top
  found = topics_lib.topics(_MODEL_DIR.value, num_topics=_NUM_TOPICS.value,
                            num_words=_NUM_WORDS.value, split=_SPLIT.value, seed=_SEED.value)
  print(topics_lib.format_topics(found))


if __name__ == "__main__":
  cli.run(main)
