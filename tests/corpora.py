"""Small sentence corpora written by tests (no ../shared data needed)."""

WORDS = "the a company said it will buy shares stocks fell sharply on monday".split()


def write_sentence_corpus(folder, lines=60):
  """Writes train/valid/test.txt of `lines` sentences (3 to 8 words) into `folder`."""
  folder.mkdir(parents=True, exist_ok=True)
  for i, split in enumerate(("train", "valid", "test")):
    text = "\n".join(" ".join(WORDS[(j * 7 + k * 3 + i) % len(WORDS)] for k in range(3 + j % 6))
                     for j in range(lines))
    (folder / f"{split}.txt").write_text(text + "\n", encoding="utf-8")
  return folder
