"""Corpora, vocabularies, tf.data pipelines and the dataset registry."""

from tf_vmfvae.data.documents import DocumentSplits
from tf_vmfvae.data.documents import load_document_splits
from tf_vmfvae.data.documents import read_feat
from tf_vmfvae.data.documents import WordList
from tf_vmfvae.data.loading import load_sentence_splits
from tf_vmfvae.data.loading import SentenceSplits
from tf_vmfvae.data.pipeline import encode_corpus
from tf_vmfvae.data.pipeline import sentence_dataset
from tf_vmfvae.data.registry import DATASETS
from tf_vmfvae.data.registry import DatasetNotFoundError
from tf_vmfvae.data.registry import ENV_VAR
from tf_vmfvae.data.registry import get_spec
from tf_vmfvae.data.registry import resolve
from tf_vmfvae.data.text import CorpusError
from tf_vmfvae.data.text import read_corpus
from tf_vmfvae.data.text import Vocabulary
