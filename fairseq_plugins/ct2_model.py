"""A fairseq checkpoint as a CTranslate2 model: conversion into a cache, the process settings that make
CTranslate2 fast on CPU, and loading a Translator (the decoding itself: fairseq_plugins/ct2_search.py).

The model is converted by CTranslate2's own FairseqConverter (decoding starts from </s>, as fairseq's decoders
do; </s> is appended to the source), once per checkpoint, into a cache keyed by the checkpoint's and the
dictionaries' sha256 (`$LSKD_CACHE/ct2`, default ~/.cache/lskd/ct2), written in a temporary directory and
renamed. On CPU, beam search runs one single-threaded CTranslate2 worker per thread (`load`), and loading a
model sets glibc's malloc to keep freed memory for reuse (`keep_freed_memory`: 3x faster beam search on a
6+6/512 model whose hypotheses run to the length limit, little gain on short outputs, docs/SEQ_KD.md);
LSKD_CT2_MALLOC=0 leaves the allocator as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple, Optional

import torch

from lskd.errors import LskdError
from lskd.fileio import sha256_file

ENGINES = ("fairseq", "ctranslate2")
COMPUTE_TYPES = ("auto", "float32", "int8", "int8_float32", "int16", "float16", "int8_float16", "bfloat16", "int8_bfloat16")
CONVERSION_FORMAT = "fairseq-converter/1"  # bump when the conversion recipe here changes


class Ct2Model(NamedTuple):
    """A converted model and where it runs: the CTranslate2 directory, "cpu" or "cuda", CPU threads."""

    path: Path
    device: str
    threads: int


class Unconvertible(Exception):
    """The checkpoint cannot run on CTranslate2 (ensemble, architecture or option the converter refuses)."""


def version() -> str:
    import ctranslate2

    return ctranslate2.__version__


def cache_root() -> Path:
    return Path(os.environ.get("LSKD_CACHE") or Path.home() / ".cache" / "lskd") / "ct2"


def device_of(cpu: bool) -> str:
    import ctranslate2

    return "cuda" if not cpu and ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(requested: str, device: str) -> str:
    """'auto' -> the fastest exact type (float32 on CPU, float16 on GPU); refuse one the device lacks."""
    import ctranslate2

    if requested not in COMPUTE_TYPES:
        raise LskdError(f"--compute-type {requested}: expected one of {', '.join(COMPUTE_TYPES)}")
    chosen = ("float16" if device == "cuda" else "float32") if requested == "auto" else requested
    supported = sorted(ctranslate2.get_supported_compute_types(device))
    if chosen not in supported:
        raise LskdError(f"--compute-type {chosen}: not supported by CTranslate2 on this {device} "
                        f"(supported: {', '.join(supported)})")
    return chosen



def _cache_key(checkpoint: str, data_dir: str, src: str, tgt: str) -> str:
    h = hashlib.sha256()
    h.update(sha256_file(Path(checkpoint)).encode())
    for lang in (src, tgt):  # the converter takes the vocabularies from the data dir's dictionaries
        h.update(f"{lang}:".encode() + sha256_file(Path(data_dir) / f"dict.{lang}.txt").encode())
    h.update(f"{CONVERSION_FORMAT} ctranslate2 {version()}".encode())
    return h.hexdigest()[:32]


def convert_into(checkpoint: str, data_dir: str, src: str, tgt: str, output_dir: Path,
                 quantization: Optional[str] = None) -> None:
    """CTranslate2's FairseqConverter (the data dir's dictionaries as vocabularies) into output_dir; Unconvertible
    with the converter's reason when it refuses the model."""
    from ctranslate2.converters import FairseqConverter

    plugins = str(Path(__file__).resolve().parent)
    # torch.load(weights_only=True) inside the converter: importing the user dir allow-lists argparse.Namespace
    converter = FairseqConverter(checkpoint, data_dir, source_lang=src, target_lang=tgt, user_dir=plugins)
    try:
        converter.convert(str(output_dir), quantization=quantization, force=True)
    except (ValueError, NotImplementedError, KeyError, AttributeError, TypeError) as e:
        text = " ".join(line.strip(" -") for line in str(e).strip().splitlines() if line.strip())
        raise Unconvertible(f"{type(e).__name__}: {text[:300]}") from None


def convert(checkpoint: str, data_dir: str, src: str, tgt: str, quiet: bool = False) -> Path:
    """The checkpoint converted to a CTranslate2 model directory (cached; built atomically on first use)."""
    root = cache_root()
    final = root / _cache_key(checkpoint, data_dir, src, tgt)
    if (final / "model.bin").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
    try:
        t0 = time.perf_counter()
        convert_into(checkpoint, data_dir, src, tgt, tmp / "model")
        (tmp / "model" / "lskd-source.txt").write_text(
            f"{os.path.abspath(checkpoint)}\n{data_dir}\n{src}-{tgt}\nctranslate2 {version()}\n")
        try:
            os.rename(tmp / "model", final)
        except OSError:  # another process finished the same conversion first
            if not (final / "model.bin").is_file():
                raise
        if not quiet:
            print(f"converted {checkpoint} for CTranslate2 in {time.perf_counter() - t0:.1f} s: {final}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed memory (one arena, no mmap, no trimming); False where libc has no mallopt.

    CTranslate2 reallocates its beams' attention caches at every step. Under glibc's defaults the big ones are
    mmap'ed and unmapped, and the decoding thread gets an arena of its own whose heaps are handed back, so every
    step page-faults them in again: at beam 5 on a 6+6/512 model whose hypotheses ran to the length limit over
    half the time went to the kernel, and these settings made beam search 3x faster (little on short outputs,
    whose caches stay small; docs/SEQ_KD.md). Process-wide; the memory kept is at most the peak the process had
    anyway.
    """
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): their allocators are left alone
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # glibc's <malloc.h>
    return all(mallopt(option, value) == 1 for option, value in
               ((m_arena_max, 1), (m_mmap_max, 0), (m_trim_threshold, 2 ** 31 - 1)))


def take_threads_from_torch() -> int:
    """Set torch to one thread and return the count it had (OMP_NUM_THREADS, as fairseq uses): CTranslate2's.

    Once torch has run a CPU op on two or more OpenMP threads (building the fairseq model that the callers load
    for their checks does), CTranslate2 decodes about 15% slower in the same process (docs/SEQ_KD.md); with
    torch on one thread its OpenMP pool never starts. Callers that decode with torch after all restore it;
    torch_threads_restored gives them back at the end.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return threads


@contextlib.contextmanager
def torch_threads_restored():
    """torch's thread count after the block as it was before, whatever take_threads_from_torch did inside."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load(model_dir: Path, device: str, compute_type: str, threads: Optional[int] = None, parallel: bool = True,
         seed: Optional[int] = None):
    """A Translator on `threads` CPU threads (default torch's count, i.e. OMP_NUM_THREADS, as fairseq).

    `parallel` (CPU): one single-threaded worker per thread, each decoding its own batches (Decoder._batching);
    on 2 cores 1.4x the beam-search speed of one worker on 2 threads (docs/SEQ_KD.md); the workers share the
    weights. Sampling keeps one worker: which worker draws which batch would otherwise vary from run to run.
    `seed`: CTranslate2's sampling seed. Its workers seed their generator once, when they first sample, so a
    new seed needs a new Translator.
    """
    import ctranslate2

    if seed is not None:
        ctranslate2.set_random_seed(seed)

    if device == "cpu" and os.environ.get("LSKD_CT2_MALLOC", "1") != "0":
        keep_freed_memory()
    if device != "cpu":
        return ctranslate2.Translator(str(model_dir), device=device, compute_type=compute_type)
    threads = threads or torch.get_num_threads()
    workers = threads if parallel else 1
    return ctranslate2.Translator(str(model_dir), device=device, compute_type=compute_type,
                                  inter_threads=workers, intra_threads=threads // workers)
