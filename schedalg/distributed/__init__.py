"""Sampling at scale on ``torch.distributed``: the same samples on 1 or N processes, resumable.

::

    # torchrun --nproc_per_node 4 my_script.py   (or one plain process)
    from schedalg.distributed import init_from_env, load_samples, sample

    with init_from_env():                              # NCCL on GPUs, gloo on CPU
        sample(sampler, 50_000, seed=0, out_dir="samples", batch_size=256, shape=(3, 32, 32))
    x = load_samples("samples")                        # (50000, 3, 32, 32), row i = sample id i

Sample ``id`` depends only on ``(seed, id)`` (per-sample seeded noise), so the results do
not depend on the number of processes; rerunning the same call after a crash samples
only the missing ids. Files: ``manifest.json`` and shards
``samples_<first>-<stop>.safetensors``. The exact denoisers of a data set split over
ranks are :class:`schedalg.denoisers.ShardedMixtureDenoiser` and
:class:`schedalg.denoisers.ShardedOptimalDenoiser`; :func:`shard_rows` gives a rank's rows.
"""

from ._group import collective_device as collective_device
from ._group import init_from_env as init_from_env
from ._group import rank_and_world as rank_and_world
from ._group import shard_rows as shard_rows
from ._load import load_samples as load_samples
from ._sample import sample as sample
from ._shards import ShardError as ShardError

__all__ = ["sample", "load_samples", "init_from_env", "rank_and_world", "collective_device", "shard_rows", "ShardError"]
