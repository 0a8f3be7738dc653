"""Resumed runs draw the batches of the run they continue.

fairseq's `FairseqTask.get_batch_iterator` groups a dataset into batches once per process (when the
dataset allows reusing its epoch iterator, as translation's does), ordering the examples under
`numpy_seed(seed + epoch)` of the epoch the process *starts* in. A fresh run therefore keeps epoch 1's
batches for every epoch, but a run resumed from a checkpoint of epoch e >= 2 regroups the examples under
epoch e's seed: same batch sizes, other sentences in them, and a loss curve that leaves the uninterrupted
run's at the first update after the resume. Imported with the user dir, this builds those once-per-process
batches with epoch 1's seed whatever the starting epoch, so a fresh run is unchanged and a resumed run
matches it (tests/fairseq_adapter/test_scale_out.py). Batches rebuilt each epoch (`rebuild_batches`,
`disable_iterator_cache`, `update_epoch_batch_itr`) are already seeded per epoch and left alone.
"""

import inspect

from fairseq.tasks import FairseqTask

_get_batch_iterator = FairseqTask.get_batch_iterator
_SIGNATURE = inspect.signature(_get_batch_iterator)


def get_batch_iterator(self, dataset, *args, **kwargs):
    """fairseq's get_batch_iterator; batches frozen for the whole run are grouped as at epoch 1."""
    call = _SIGNATURE.bind(self, dataset, *args, **kwargs)
    call.apply_defaults()
    options = call.arguments
    epoch = options["epoch"]
    frozen_for_run = (
        epoch > 1
        and not getattr(self.cfg, "rebuild_batches", False)
        and not options["disable_iterator_cache"]
        and not options["update_epoch_batch_itr"]
        and self.can_reuse_epoch_itr(dataset)
        and dataset not in self.dataset_to_epoch_iter
    )
    if not frozen_for_run:
        return _get_batch_iterator(*call.args, **call.kwargs)
    options["epoch"] = 1
    iterator = _get_batch_iterator(*call.args, **call.kwargs)
    iterator.epoch = epoch  # the only use of the constructor's epoch: where the iteration starts
    dataset.set_epoch(epoch)
    return iterator


if FairseqTask.get_batch_iterator is not get_batch_iterator:
    FairseqTask.get_batch_iterator = get_batch_iterator
