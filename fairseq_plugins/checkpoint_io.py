"""Atomic checkpoint copies: fairseq writes one checkpoint atomically (temporary file + rename) and then
*copies* it to the others (checkpoint_last.pt, checkpoint_best.pt) with a plain copy, so a job killed
during that copy leaves a truncated checkpoint_last.pt and cannot resume. Imported with the user dir,
this makes those copies write a temporary file beside the target and rename it into place.
"""

import os
import shutil

from fairseq.file_io import PathManager

_plain_copy = PathManager.copy


def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """PathManager.copy for local files, renamed into place whole; other paths go to fairseq's own copy."""
    local = os.path.isfile(src_path) and os.path.isdir(os.path.dirname(os.path.abspath(dst_path)))
    if not local or (os.path.exists(dst_path) and not overwrite):
        return _plain_copy(src_path, dst_path, overwrite=overwrite)
    tmp = f"{dst_path}.copy.tmp"
    try:
        shutil.copyfile(src_path, tmp)
        os.replace(tmp, dst_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


if PathManager.copy is not atomic_copy:
    PathManager.copy = staticmethod(atomic_copy)
