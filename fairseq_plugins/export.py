"""`lskd export`: a trained fairseq model as a self-contained folder that `lskd translate` runs on raw text.

    lskd export --checkpoint CKPT --data DATA_BIN --out DIR [--quantization none|int8|int8_float32|int16|float16]

DIR holds:
    model/              the CTranslate2 model (CTranslate2's own FairseqConverter; weights quantised as asked)
    dict.SRC.txt, dict.TGT.txt   the fairseq dictionaries (lskd translate searches in fairseq's token ids, as
                        ct2-generate does, so its hypotheses are ct2-generate's)
    tokenizer files     what the data was prepared with, from DATA_BIN's data_prep manifest: its sentencepiece
                        model(s), or the teacher's BPE codes (after Moses tokenisation)
    export.json         language pair, tokenizer and post-processing, max positions, the model's parameter count
                        (shared embeddings once), the checkpoint's sha256,
                        the quantization, CTranslate2's version, and the sha256 of every file (written last)
The folder is written under a temporary name and renamed when complete. Exporting the same checkpoint with
the same settings again gives the same files (their hashes are compared; what differs is named).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional

from lskd.errors import LskdError
from lskd.fileio import atomic_dir, read_json, sha256_file, write_json

from . import ct2_model

QUANTIZATIONS = ("none", "int8", "int8_float32", "int16", "float16")
FORMAT = "lskd-export/1"


def tokenizer_of(data_bin: Path, src: str, tgt: str) -> Dict:
    """How raw text becomes the data's pieces and back, from the data_prep manifest above DATA_BIN:
    {"kind": "sentencepiece", "models": {lang: file}} or {"kind": "moses+bpe", "codes": file, ...}."""
    manifest_path = Path(data_bin).resolve().parent / "manifest.json"
    if not manifest_path.is_file():
        raise LskdError(f"--data {data_bin}: no data_prep manifest ({manifest_path}) saying how the text was prepared "
                        "(the export needs the tokenizer)")
    manifest = read_json(manifest_path, "a data_prep manifest")
    pre = manifest.get("preprocessing")
    if pre and pre.get("subword") == "bpe":
        return {"kind": "moses+bpe" if pre.get("tokenizer") == "moses" else "bpe", "codes": pre["subword_file"],
                "moses": pre.get("moses"), "lowercase": pre.get("lowercase", False), "post_process": "subword_nmt"}
    if pre:
        return {"kind": "sentencepiece", "models": {src: pre["subword_file"], tgt: pre["subword_file"]},
                "post_process": "sentencepiece"}
    models = manifest.get("spm_models") or {}
    if not all(lang in models for lang in (src, tgt)):
        raise LskdError(f"--data {data_bin}: its manifest names no sentencepiece model for {src} and {tgt}")
    base = manifest_path.parent / "spm"
    return {"kind": "sentencepiece", "models": {lang: str(base / Path(models[lang]).name) for lang in (src, tgt)},
            "post_process": "sentencepiece"}


def _copy_tokenizer(tokenizer: Dict, tmp: Path) -> Dict:
    """The tokenizer's files copied into the export; the record with names relative to it."""
    record = dict(tokenizer)
    if "codes" in tokenizer:
        shutil.copy(tokenizer["codes"], tmp / "bpecodes")
        record["codes"] = "bpecodes"
        return record
    names = {}
    for lang, model in tokenizer["models"].items():
        name = "spm.model" if len(set(tokenizer["models"].values())) == 1 else f"spm.{lang}.model"
        if not Path(model).is_file():
            raise LskdError(f"{model}: the sentencepiece model the data manifest names is not there")
        shutil.copy(model, tmp / name)
        names[lang] = name
    record["models"] = names
    return record


def file_hashes(folder: Path) -> Dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "export.json"}


def export(checkpoint: str, data_bin: str, out: Path, quantization: str = "none", trust: bool = False) -> Path:
    from .teacher import TeacherSession, weights_only

    if quantization not in QUANTIZATIONS:
        raise LskdError(f"--quantization {quantization}: expected one of {', '.join(QUANTIZATIONS)}")
    session = TeacherSession.for_data(data_bin, checkpoint, [], option="--checkpoint", trust=trust)  # checks the dicts
    task, model = session.task, session.models[0]
    src, tgt = task.cfg.source_lang, task.cfg.target_lang
    tokenizer = tokenizer_of(Path(data_bin), src, tgt)
    out = Path(out)
    previous = read_json(out / "export.json", "an lskd export manifest") if (out / "export.json").is_file() else None
    with atomic_dir(out) as tmp:
        try:
            with weights_only(not trust):  # the converter loads the checkpoint again
                ct2_model.convert_into(checkpoint, data_bin, src, tgt, tmp / "model",
                                       None if quantization == "none" else quantization)
        except ct2_model.Unconvertible as e:
            raise LskdError(f"--checkpoint {checkpoint}: CTranslate2 cannot convert this model ({e})") from None
        for lang in (src, tgt):
            shutil.copy(Path(data_bin) / f"dict.{lang}.txt", tmp / f"dict.{lang}.txt")
        record = _copy_tokenizer(tokenizer, tmp)
        manifest = {
            "format": FORMAT, "source_lang": src, "target_lang": tgt, "tokenizer": record,
            "max_source_positions": int(model.max_positions()[0]), "max_target_positions": model.max_decoder_positions(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "checkpoint": {"path": str(Path(checkpoint).resolve()), "sha256": sha256_file(Path(checkpoint))},
            "quantization": quantization, "ctranslate2": ct2_model.version(), "files": file_hashes(tmp),
        }
        write_json(tmp / "export.json", manifest)
    _compare(previous, manifest, out)
    return out


def _compare(previous: Optional[dict], now: dict, out: Path) -> None:
    """Say whether a re-export gave the same files."""
    if previous is None:
        print(f"exported to {out} ({len(now['files'])} files, quantization {now['quantization']})", file=sys.stderr)
        return
    changed = sorted(k for k in set(previous.get("files", {})) | set(now["files"])
                     if previous.get("files", {}).get(k) != now["files"].get(k))
    print(f"re-exported {out}: " + ("the same files" if not changed else f"files that differ: {', '.join(changed)}"),
          file=sys.stderr)


def main(argv: List[str]) -> int:
    doc = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(prog="lskd export", description=doc[0], epilog=doc[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="the fairseq checkpoint to export")
    p.add_argument("--data", required=True, help="the data dir it was trained on (dictionaries; the data_prep manifest "
                                                 "above it names the tokenizer)")
    p.add_argument("--out", required=True, type=Path, help="the export folder (replaced when complete)")
    p.add_argument("--quantization", default="none", choices=QUANTIZATIONS,
                   help="CTranslate2 weight type (default none: as trained, float32)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="load a checkpoint that needs pickled classes besides tensors and fairseq's config (older "
                        "fairseq versions, other code): only files you trust")
    a = p.parse_args(argv)
    export(a.checkpoint, a.data, a.out, a.quantization, a.trust_checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
