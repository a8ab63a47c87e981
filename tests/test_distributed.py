"""schedalg.distributed: the same samples on 1, 2 or 3 gloo processes, resumable, checked on read.

Multi-process tests fork worker processes (no re-import: a fork costs milliseconds) that
join a gloo group on 127.0.0.1 at a free port. The reference is one process, one batch:
``sampler(per_sample_normal((N, 2), seed), seed=seed)``.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import struct
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given
from hypothesis import strategies as st

import schedalg as sa
from schedalg.denoisers import GaussianMixtureDenoiser
from schedalg.distributed import ShardError, load_samples, sample
from schedalg.sampling import Sampler, TimeGrid, per_sample_normal

N, SEED = 20, 7
SCHEDULE = sa.schedules.linear()
# a 2-D mixture whose components matter (7 well-separated means, small variance)
MEANS = 2.0 * torch.randn(7, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
DENOISER = GaussianMixtureDenoiser(SCHEDULE, MEANS, 0.05)
GRID = TimeGrid.uniform(SCHEDULE, 6, t_start=0.02, t_end=0.98)
# stochastic: the per-step draws must follow the sample id too, not only the initial noise
SAMPLER = Sampler(DENOISER, GRID, "euler_maruyama")


def _reference(sampler: Sampler = SAMPLER, n: int = N, seed: int = SEED) -> torch.Tensor:
    return sampler(per_sample_normal((n, 2), seed), seed=seed)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, job, args) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))  # a broken test fails instead of hanging
    try:
        job(rank, *args)
    finally:
        dist.destroy_process_group()


def _launch(world: int, job, *args) -> None:
    """Run ``job(rank, *args)`` on ``world`` forked gloo processes; raises if any fails."""
    mp.start_processes(_worker, args=(world, _free_port(), job, args), nprocs=world, join=True,
                       start_method="fork")


def _sample_job(rank, out_dir, batch_size, progress):
    sample(SAMPLER, N, SEED, out_dir, batch_size=batch_size, shape=(2,), progress=progress)


class _CrashingSampler(Sampler):
    """Rank 1 dies (hard exit, no clean-up) when asked for its second batch."""

    calls = 0

    def __call__(self, noise, **kwargs):
        type(self).calls += 1
        if dist.get_rank() == 1 and type(self).calls == 2:
            os._exit(3)
        return super().__call__(noise, **kwargs)


def _crash_job(rank, out_dir):
    sample(_CrashingSampler(DENOISER, GRID, "euler_maruyama"), N, SEED, out_dir, batch_size=3, shape=(2,))


# ---------------------------------------------------------------------------- same samples, any world size


def test_one_process_equals_one_batch(tmp_path):
    sample(SAMPLER, N, SEED, tmp_path, batch_size=N, progress=False, shape=(2,))
    assert torch.equal(load_samples(tmp_path), _reference())


@pytest.mark.parametrize("world, batch_size", [(2, 3), (3, 4)])  # 7 and 5 batches: 4+3 and 2+2+1 per rank
def test_world_sizes_give_identical_samples(tmp_path, world, batch_size):
    _launch(world, _sample_job, str(tmp_path), batch_size, world == 2)
    assert torch.equal(load_samples(tmp_path), _reference())
    names = sorted(p.name for p in tmp_path.glob("samples_*"))
    assert names[0] == f"samples_000000000-{batch_size:09d}.safetensors"
    assert len(names) == -(-N // batch_size)


class _Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


NETWORK_SAMPLER = Sampler(sa.models.NetworkDenoiser(_Mlp(), SCHEDULE, prediction="velocity"),
                          TimeGrid.uniform(SCHEDULE, 3, t_start=0.05, t_end=0.95), "ancestral")


def _network_job(rank, out_dir):
    sample(NETWORK_SAMPLER, N, SEED, out_dir, batch_size=3, shape=(2,), progress=False)


def test_network_sampler_same_files_for_any_world_size(tmp_path):
    """A network is not batch-invariant to the last bit, but the batches do not depend on the world size."""
    sample(NETWORK_SAMPLER, N, SEED, tmp_path / "one", batch_size=3, shape=(2,), progress=False)
    _launch(3, _network_job, str(tmp_path / "three"))
    for one in sorted((tmp_path / "one").iterdir()):
        assert one.read_bytes() == (tmp_path / "three" / one.name).read_bytes()


def test_killed_rank_then_rerun_completes_the_identical_set(tmp_path):
    with pytest.raises(Exception):  # rank 1 exits with status 3 after its first shard
        _launch(2, _crash_job, str(tmp_path))
    shards = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("samples_*")}
    assert "samples_000000003-000000006.safetensors" in shards  # rank 1's first batch
    assert "samples_000000009-000000012.safetensors" not in shards  # rank 1's second batch: never written
    # rank 0 stops at the progress all-reduce after its second batch (6-8), written or not
    with pytest.raises(ShardError, match=r"missing, ids (6|9)-19\."):
        load_samples(tmp_path)
    sample(SAMPLER, N, SEED, tmp_path, batch_size=3, shape=(2,), progress=False)  # rerun in one process
    assert torch.equal(load_samples(tmp_path), _reference())
    for name, mtime in shards.items():  # complete shards were kept, not resampled
        assert (tmp_path / name).stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob(".*tmp"))


# ---------------------------------------------------------------------------- sharded exact denoisers

DATA = torch.randn(11, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
WEIGHTS = torch.rand(11, generator=torch.Generator().manual_seed(5), dtype=torch.float64) + 0.2
STATES = 1.5 * torch.randn(5, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
# from nearly flat to one-component-dominated responsibilities (the max term matters at small sigma)
SIGMAS = (3.0, 0.5, 0.05, 1e-3)


def _denoised(mixture, optimal):
    rows = [mixture.denoise(STATES, 0.8, s)[0] for s in SIGMAS] + [optimal.denoise(STATES, 0.8, s)[0] for s in SIGMAS]
    grid = TimeGrid.uniform(SCHEDULE, 4, t_start=0.05, t_end=0.95)
    noise = per_sample_normal((5, 3), 1, dtype=torch.float64)
    rows.append(Sampler(mixture, grid, "dpmpp_2m")(noise))  # a whole run through the sharded denoiser
    return torch.stack(rows)


def _sharded_job(rank, out_file):
    from schedalg.denoisers import ShardedMixtureDenoiser, ShardedOptimalDenoiser
    from schedalg.distributed import shard_rows

    part = shard_rows(len(DATA))  # 3, 4, 4 rows on 3 ranks
    mixture = ShardedMixtureDenoiser(SCHEDULE, DATA[part], 0.02, WEIGHTS[part], chunk_size=2)
    optimal = ShardedOptimalDenoiser(SCHEDULE, DATA[part], chunk_size=2)
    torch.save(_denoised(mixture, optimal), f"{out_file}.{rank}")
    # the sampler at scale with the split denoiser: every rank runs every batch, rank 0 writes
    sample(Sampler(mixture, GRID, "ancestral"), 7, SEED, f"{out_file}_samples", batch_size=3, shape=(3,),
           dtype=torch.float64)


def test_sharded_denoisers_equal_one_process(tmp_path):
    from schedalg.denoisers import OptimalDenoiser

    _launch(3, _sharded_job, str(tmp_path / "out"))
    single = _denoised(GaussianMixtureDenoiser(SCHEDULE, DATA, 0.02, WEIGHTS), OptimalDenoiser(SCHEDULE, DATA))
    for rank in range(3):
        sharded = torch.load(tmp_path / f"out.{rank}")
        # only the summation order differs: float64 rounding of O(1) values, far below 1e-12
        assert (sharded - single).abs().max() < 1e-12
    assert (single[0] - single[3]).abs().max() > 0.1  # the sigmas span different regimes
    reference = Sampler(GaussianMixtureDenoiser(SCHEDULE, DATA, 0.02, WEIGHTS), GRID, "ancestral")(
        per_sample_normal((7, 3), SEED, dtype=torch.float64), seed=SEED)
    assert (load_samples(tmp_path / "out_samples") - reference).abs().max() < 1e-12


# ---------------------------------------------------------------------------- resume and refusals


def test_rerun_with_other_parameters_is_refused(tmp_path):
    sample(SAMPLER, 6, SEED, tmp_path, batch_size=4, shape=(2,), progress=False)
    with pytest.raises(ShardError, match=r"seed=7; got seed=8"):
        sample(SAMPLER, 6, SEED + 1, tmp_path, batch_size=4, shape=(2,), progress=False)
    with pytest.raises(ShardError, match=r"num_samples=6; got num_samples=9"):
        sample(SAMPLER, 9, SEED, tmp_path, batch_size=4, shape=(2,), progress=False)
    other = Sampler(DENOISER, GRID, "euler")
    with pytest.raises(ShardError, match=r"sampler="):
        sample(other, 6, SEED, tmp_path, batch_size=4, shape=(2,), progress=False)
    sample(SAMPLER, 6, SEED, tmp_path, batch_size=5, shape=(2,), progress=False)  # another batch size: fine


def test_partial_then_resume_with_another_batch_size(tmp_path):
    sample(SAMPLER, N, SEED, tmp_path, batch_size=6, shape=(2,), progress=False)
    (tmp_path / "samples_000000006-000000012.safetensors").unlink()
    (tmp_path / "samples_000000018-000000020.safetensors").unlink()
    with pytest.raises(ShardError, match=r"8 missing, ids 6-11, 18-19"):
        load_samples(tmp_path)
    sample(SAMPLER, N, SEED, tmp_path, batch_size=4, shape=(2,), progress=False)
    assert sorted(p.name[8:26] for p in tmp_path.glob("samples_*")) == [
        "000000000-00000000", "000000006-00000000", "000000008-00000001", "000000012-00000001",
        "000000018-00000002"]
    assert torch.equal(load_samples(tmp_path), _reference())


def _shard(tmp_path):
    sample(SAMPLER, 6, SEED, tmp_path, batch_size=3, shape=(2,), progress=False)
    return tmp_path / "samples_000000003-000000006.safetensors"


def _rewrite_header(path, edit):
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length:])


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-4]), "truncated"),
    (lambda p: p.write_bytes(b"\xff" * 8 + p.read_bytes()[8:]), "header length"),
    (lambda p: p.write_bytes(p.read_bytes()[:8] + b"#" + p.read_bytes()[9:]), "JSON"),
    (lambda p: p.write_bytes(struct.pack("<Q", 50000) + b"[" * 50000 + p.read_bytes()), "JSON"),  # deep nesting
    (lambda p: _rewrite_header(p, lambda h: h["samples"].update(dtype="F64")), "tensor entry"),
    (lambda p: _rewrite_header(p, lambda h: h["samples"].update(shape=[2, 3])), "tensor entry"),
    (lambda p: _rewrite_header(p, lambda h: h["__metadata__"].update(run="0" * 64)), "run's digest"),
    (lambda p: _rewrite_header(p, lambda h: h["__metadata__"].update(first="2")), "id range"),
    (lambda p: _rewrite_header(p, lambda h: h.update(extra={})), "keys"),
])
def test_damaged_shard_is_refused_then_regenerated(tmp_path, damage, message):
    path = _shard(tmp_path)
    damage(path)
    with pytest.raises(ShardError, match=message):
        load_samples(tmp_path)
    sample(SAMPLER, 6, SEED, tmp_path, batch_size=3, shape=(2,), progress=False)
    assert (tmp_path / (path.name + ".invalid")).exists()
    assert torch.equal(load_samples(tmp_path), _reference(n=6))


def test_damaged_manifest_and_foreign_files_are_refused(tmp_path):
    _shard(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "schedalg.samples/1", "seed": "x"}')
    with pytest.raises(ShardError, match="manifest with the keys"):
        load_samples(tmp_path)
    with pytest.raises(ShardError, match="manifest with the keys"):
        sample(SAMPLER, 6, SEED, tmp_path, batch_size=3, shape=(2,), progress=False)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ShardError, match="shards without a manifest"):
        sample(SAMPLER, 6, SEED, tmp_path, batch_size=3, shape=(2,), progress=False)
    with pytest.raises(ShardError, match="is not a directory"):
        load_samples(tmp_path / "nothing")


def test_progress_without_tqdm_prints_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    sample(SAMPLER, N, SEED, tmp_path, batch_size=5, shape=(2,))
    assert capsys.readouterr().err.splitlines() == [f"schedalg sample: {k}/{N}" for k in (5, 10, 15, 20)]


def test_bad_arguments(tmp_path):
    with pytest.raises(sa.SchedalgError, match="shape="):
        sample(SAMPLER, 4, 0, tmp_path)
    with pytest.raises(sa.SchedalgError, match="batch_size: an int >= 1"):
        sample(SAMPLER, 4, 0, tmp_path, batch_size=0, shape=(2,))
    with pytest.raises(sa.SchedalgError, match="a schedalg.sampling.Sampler"):
        sample(DENOISER, 4, 0, tmp_path, shape=(2,))
    with pytest.raises(sa.SchedalgError, match="offset"):
        per_sample_normal((2, 2), 0, offset=-1)


# ---------------------------------------------------------------------------- formats and samplers


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes_round_trip(tmp_path, dtype):
    sample(SAMPLER, 5, SEED, tmp_path, batch_size=2, shape=(2,), dtype=dtype, progress=False)
    loaded = load_samples(tmp_path)
    assert loaded.dtype == dtype
    assert torch.equal(loaded, SAMPLER(per_sample_normal((5, 2), SEED, dtype=dtype), seed=SEED))
    safetensors_torch = pytest.importorskip("safetensors.torch")
    assert torch.equal(safetensors_torch.load_file(str(tmp_path / "samples_000000004-000000005.safetensors"))[
        "samples"], loaded[4:])


def test_shards_are_safetensors_files(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = _shard(tmp_path)
    loaded = safetensors_torch.load_file(str(path))
    assert torch.equal(loaded["samples"], _reference(n=6)[3:])
    with open(path, "rb") as handle:  # written by the safetensors package, read back by ours
        metadata = json.loads(handle.read(struct.unpack("<Q", handle.read(8))[0]))["__metadata__"]
    safetensors_torch.save_file({"samples": loaded["samples"]}, str(path), metadata=metadata)
    assert torch.equal(load_samples(tmp_path), _reference(n=6))


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(1, 9))
def test_work_items_cover_the_missing_ids_in_whole_blocks(flags, batch_size):
    from schedalg.distributed._sample import work_items

    items = work_items(torch.tensor(flags), batch_size)
    covered = [i for first, stop in items for i in range(first, stop)]
    assert covered == [i for i, flag in enumerate(flags) if flag]  # every missing id once, in id order
    assert all(first // batch_size == (stop - 1) // batch_size for first, stop in items)  # one block each
    assert all(stop < first_next or stop % batch_size == 0  # maximal: runs split only at block edges
               for (_, stop), (first_next, _) in zip(items, items[1:]))


def test_noise_offset_gives_rows_of_the_full_batch():
    full = per_sample_normal((9, 3), 5, stream=1, count=2)
    assert torch.equal(per_sample_normal((4, 3), 5, stream=1, count=2, offset=5), full[:, 5:])


def test_exported_sampler_gives_the_same_samples(tmp_path):
    # a fresh denoiser, exported before any eager call: its component cache must not keep
    # tracing placeholders (the eager reference below would come back as a FakeTensor)
    sampler = Sampler(GaussianMixtureDenoiser(SCHEDULE, MEANS, 0.05),
                      TimeGrid.uniform(SCHEDULE, 2, t_start=0.02, t_end=0.98), "ancestral")
    loaded = sa.sampling.load_sampler(sa.sampling.export_sampler(sampler, tmp_path / "s.pt", torch.zeros(4, 2),
                                                                  write_loader=False))
    sample(loaded, 10, SEED, tmp_path / "out", batch_size=4, progress=False)  # last batch of 2 padded to 4
    reference = _reference(sampler, n=10)
    assert type(reference) is torch.Tensor
    assert torch.equal(load_samples(tmp_path / "out"), reference)
    with pytest.raises(sa.SchedalgError, match="batch_size <= 4"):
        sample(loaded, 10, SEED, tmp_path / "out2", batch_size=5, progress=False)


# ---------------------------------------------------------------------------- command line


def _cli_job(rank, world, port, argv):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    import contextlib
    import io

    from schedalg.__main__ import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(argv)
    if status != 0 or dist.is_initialized():  # the command joins the group, then leaves it
        os._exit(5)
    if rank == 0 and "on 2 process(es)" not in printed.getvalue():
        os._exit(6)


def test_cli_sample_from_a_library_schedule_and_an_exported_file(tmp_path, capsys):
    from schedalg.__main__ import main

    common = ["--num-samples", "9", "--seed", str(SEED), "--batch-size", "4", "--no-progress"]
    library = ["--schedule", "linear", "--solver", "ancestral", "--steps", "3", "--t-start", "0.02", "--t-end",
               "0.98", "--denoiser", "gaussian:0.5,0.3"]
    assert main(["sample", *library, "--shape", "2", "--out", str(tmp_path / "a"), *common]) == 0
    assert "after" in capsys.readouterr().out
    sampler = Sampler(sa.denoisers.GaussianDenoiser(SCHEDULE, 0.5, 0.3),
                      TimeGrid.uniform(SCHEDULE, 3, t_start=0.02, t_end=0.98), "ancestral")
    reference = _reference(sampler, n=9)
    assert torch.equal(load_samples(tmp_path / "a"), reference)
    # the same run from an exported file, on two processes joined the torchrun way (environment variables)
    assert main(["export", *library, "--shape", "4,2", "--out", str(tmp_path / "s.pt")]) == 0
    argv = ["sample", "--sampler", str(tmp_path / "s.pt"), "--out", str(tmp_path / "b"), *common]
    mp.start_processes(_cli_job, args=(2, _free_port(), argv), nprocs=2, join=True, start_method="fork")
    assert torch.equal(load_samples(tmp_path / "b"), reference)
    assert main(["sample", "--sampler", "x.pt", *library, "--out", str(tmp_path / "c"), *common]) == 2
    assert "exactly one of --sampler FILE or --schedule NAME" in capsys.readouterr().err


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
