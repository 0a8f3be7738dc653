"""Preparing a corpus for a teacher lskd did not train: its dictionaries and its subword model instead of new ones.

    python -m data_prep.parallel ... --teacher-dir TEACHER        (every data_prep command takes it)
    python -m data_prep.parallel ... --srcdict D.de --tgtdict D.en (--bpe-codes CODES | --spm-model M.model)

TEACHER is a model folder in fairseq's released layout: a checkpoint (model.pt or checkpoint*.pt),
dict.SRC.txt, dict.TGT.txt, and either BPE codes (`bpecodes`: the text is Moses-tokenised first, as fairseq's
released models do: tokenizer.perl -a with escaping, then BPE; data_prep/bpe.py) or a sentencepiece model
(`*.model`). The binaries use exactly the teacher's dictionaries (fairseq-preprocess --srcdict/--tgtdict: no
new symbol); pieces the dictionary lacks become <unk>, counted per split. The data's manifest records the
preprocessing, so `lskd score` (Moses detokenisation before sacreBLEU), the recipes (fairseq-generate's
--post-process) and `lskd distill-data --source-text` prepare and undo it the same way.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from lskd.fileio import sha256_file

from .common import DataPrepError


@dataclass(frozen=True)
class TeacherVocab:
    """The dictionaries and subword model a teacher reads; exactly one of bpe_codes and spm_model."""

    srcdict: Path
    tgtdict: Path
    bpe_codes: Optional[Path] = None
    spm_model: Optional[Path] = None
    checkpoint: Optional[Path] = None

    @property
    def subword(self) -> str:
        return "bpe" if self.bpe_codes else "sentencepiece"

    @property
    def post_process(self) -> str:
        """fairseq-generate's --post-process for this text."""
        return "subword_nmt" if self.bpe_codes else "sentencepiece"

    def record(self, src: str, tgt: str, tokenize: bool = True) -> dict:
        """The manifest's "preprocessing": what was done to raw/ text, and the files' hashes. `tokenize`: raw/ is
        untouched text, Moses-tokenised before BPE (False: raw/ is tokenised already)."""
        subword_file = self.bpe_codes or self.spm_model
        out = {"subword": self.subword, "subword_file": str(Path(subword_file).resolve()),
               "subword_sha256": sha256_file(subword_file),
               "dictionaries": {src: str(Path(self.srcdict).resolve()), tgt: str(Path(self.tgtdict).resolve())},
               "dictionary_sha256": {src: sha256_file(self.srcdict), tgt: sha256_file(self.tgtdict)},
               "post_process": self.post_process,
               "teacher_checkpoint": str(Path(self.checkpoint).resolve()) if self.checkpoint else None}
        if self.bpe_codes and tokenize:
            out.update(tokenizer="moses", moses={"aggressive_dash_splits": True, "escape": True}, lowercase=False)
        else:
            out.update(tokenizer=None, lowercase=False)
        return out


def add_teacher_vocab_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("an existing teacher's vocabulary (instead of a new sentencepiece model)")
    g.add_argument("--teacher-dir", type=Path, default=None,
                   help="a fairseq model folder (checkpoint, dict.SRC.txt, dict.TGT.txt, bpecodes or *.model): "
                        "prepare the corpus the way that teacher reads text")
    g.add_argument("--srcdict", type=Path, default=None, help="the teacher's source dictionary (with --tgtdict)")
    g.add_argument("--tgtdict", type=Path, default=None, help="the teacher's target dictionary (with --srcdict)")
    g.add_argument("--bpe-codes", type=Path, default=None,
                   help="BPE codes (subword-nmt or fastBPE format): Moses tokenisation, then BPE")
    g.add_argument("--spm-model", type=Path, default=None, help="a sentencepiece model")


def _one(folder: Path, pattern: str, what: str) -> Optional[Path]:
    found = sorted(folder.glob(pattern))
    if len(found) > 1:
        raise DataPrepError(f"--teacher-dir {folder}: several {what} ({', '.join(p.name for p in found)}); "
                            "give the files with --srcdict/--tgtdict and --bpe-codes or --spm-model")
    return found[0] if found else None


def _from_folder(folder: Path, src: str, tgt: str) -> TeacherVocab:
    if not folder.is_dir():
        raise DataPrepError(f"--teacher-dir {folder}: no such directory (expected a fairseq model folder)")
    dicts = sorted(p.name for p in folder.glob("dict.*.txt"))
    missing = [f"dict.{lang}.txt" for lang in (src, tgt) if not (folder / f"dict.{lang}.txt").is_file()]
    if missing:
        has = f" (it has {', '.join(dicts)}: another language pair?)" if dicts else ""
        raise DataPrepError(f"--teacher-dir {folder}: no {' and no '.join(missing)} for {src}-{tgt}{has}")
    checkpoint = (folder / "model.pt") if (folder / "model.pt").is_file() else _one(folder, "checkpoint*.pt", "checkpoints")
    codes = folder / "bpecodes" if (folder / "bpecodes").is_file() else None
    spm = _one(folder, "*.model", "sentencepiece models")
    if codes and spm:
        raise DataPrepError(f"--teacher-dir {folder}: both bpecodes and {spm.name}; give the one the teacher used "
                            "with --bpe-codes or --spm-model (and --srcdict/--tgtdict)")
    if not (codes or spm):
        raise DataPrepError(f"--teacher-dir {folder}: no bpecodes and no sentencepiece *.model (the subword model "
                            "the teacher's dictionaries were made with)")
    return TeacherVocab(folder / f"dict.{src}.txt", folder / f"dict.{tgt}.txt", codes, spm, checkpoint)


def teacher_vocab(args: argparse.Namespace, src: str, tgt: str) -> Optional[TeacherVocab]:
    """The vocabulary given on the command line (folder or files), checked; None for a new sentencepiece model."""
    files = {k: getattr(args, k, None) for k in ("srcdict", "tgtdict", "bpe_codes", "spm_model")}
    if getattr(args, "teacher_dir", None) is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in files.items() if v is not None]
        if given:
            raise DataPrepError(f"--teacher-dir and {' '.join(given)}: give the folder or the files, not both")
        vocab = _from_folder(Path(args.teacher_dir), src, tgt)
    elif any(v is not None for v in files.values()):
        if files["srcdict"] is None or files["tgtdict"] is None:
            raise DataPrepError("--srcdict and --tgtdict: expected both (the teacher's two dictionaries)")
        if (files["bpe_codes"] is None) == (files["spm_model"] is None):
            raise DataPrepError("--bpe-codes or --spm-model: expected exactly one (the teacher's subword model)")
        vocab = TeacherVocab(**files)
    else:
        return None
    for option, path in (("--srcdict", vocab.srcdict), ("--tgtdict", vocab.tgtdict),
                         ("--bpe-codes", vocab.bpe_codes), ("--spm-model", vocab.spm_model)):
        if path is not None and not Path(path).is_file():
            raise DataPrepError(f"{option} {path}: file not found")
    return vocab


def dictionary_symbols(path: Path) -> set:
    """The symbols of a fairseq dict.*.txt (one 'symbol count [#fairseq:overwrite]' per line)."""
    symbols = set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.rstrip().rsplit(" ", 2 if line.rstrip().endswith("#fairseq:overwrite") else 1)
        if len(parts) < 2:
            raise DataPrepError(f"{path}: line {n} is not 'symbol count' (not a fairseq dictionary)")
        symbols.add(parts[0])
    return symbols


def unknown_pieces(encoded: Path, symbols: set) -> Dict[str, int]:
    """Pieces of an encoded file that the dictionary lacks (fairseq maps them to <unk>): tokens, unknown, examples."""
    tokens = unknown = 0
    examples: List[str] = []
    with open(encoded, encoding="utf-8") as f:
        for line in f:
            for piece in line.split():
                tokens += 1
                if piece not in symbols:
                    unknown += 1
                    if len(examples) < 5 and piece not in examples:
                        examples.append(piece)
    return {"tokens": tokens, "unknown": unknown, "examples": examples}


def subword_encoder(kind: str, path: Path, lang: str, moses: bool = False) -> Callable[[List[str]], List[str]]:
    """Raw lines -> lines of pieces: Moses tokenisation (-a, escaped) when `moses`, then the BPE codes at `path`
    (kind "bpe"), or the sentencepiece model at `path` (loaded once)."""
    if kind == "bpe":
        from . import moses as moses_tools
        from .bpe import BpeCodes

        codes = BpeCodes(Path(path))

        def bpe(lines: List[str]) -> List[str]:
            if moses:
                lines = moses_tools.tokenize(lines, lang, aggressive=True, escape=True)
            return [codes.line(line) for line in lines]

        return bpe
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(path))
    return lambda lines: [" ".join(pieces) for pieces in sp.encode(list(lines), out_type=str)]


def text_encoder(manifest: dict, lang: str) -> Callable[[List[str]], List[str]]:
    """What makes raw text of `lang` into the pieces a data dir holds, from its data_prep manifest: the teacher's
    Moses + BPE or sentencepiece model ("preprocessing"), or the data's own sentencepiece model ("spm_models")."""
    base = Path(manifest.get("path", "manifest.json")).parent
    pre = manifest.get("preprocessing")
    if pre is not None:
        kind, model = pre["subword"], Path(pre["subword_file"])
    elif manifest.get("spm_models", {}).get(lang):
        kind, model = "sentencepiece", base / "spm" / Path(manifest["spm_models"][lang]).name
    else:
        raise DataPrepError(f"the data manifest {manifest.get('path', '')} says nothing of how {lang} text was prepared "
                            "(no 'preprocessing' and no 'spm_models': prepare the data with data_prep)")
    if not model.is_file():
        raise DataPrepError(f"{model}: the subword model the data manifest names is not there")
    return subword_encoder(kind, model, lang, moses=pre is not None and pre.get("tokenizer") == "moses")
