"""z-search checkpoints: a finished search is reused only when nothing it depends on changed."""
import torch

from facefill.inpaint import search_cache
from facefill.inpaint import semantic as sem
from facefill.masks import make_masks
from facefill.models.dcgan import DCGANConfig, DCGANTask

SIZE = 64


def setup(seed: int = 0):
    torch.manual_seed(0)
    task = DCGANTask(DCGANConfig(width=8))
    search = sem.SemanticInpainter(task.generator.eval(), task.discriminator.eval(),
                                   sem.SemanticConfig(iterations=4, candidates=2, lr=0.1, seed=seed, snapshot_at=2))
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return search, x, make_masks("center", SIZE, 2, hole=SIZE // 2)


class Counting:
    """The search, counting how often it really runs."""

    def __init__(self, search):
        self.search, self.calls = search, 0

    def __getattr__(self, name):
        return getattr(self.search, name)

    def inpaint(self, *a, **kw):
        self.calls += 1
        return self.search.inpaint(*a, **kw)


def test_a_finished_search_is_reused_bit_for_bit(tmp_path):
    search, x, m = setup()
    counted = Counting(search)
    first = search_cache.cached_inpaint(counted, x, m, tmp_path, salt={"precision": "fp32"}, record_every=2)
    again = search_cache.cached_inpaint(counted, x, m, tmp_path, salt={"precision": "fp32"}, record_every=2)
    assert counted.calls == 1 and len(list(tmp_path.glob("zsearch_*.pt"))) == 1
    assert torch.equal(first.completed, again.completed) and torch.equal(first.snapshot.completed, again.snapshot.completed)
    assert first.history.equals(again.history)


def test_any_input_that_decides_the_result_gives_a_new_search(tmp_path):
    search, x, m = setup()
    counted = Counting(search)
    base = dict(salt={"precision": "fp32"})
    search_cache.cached_inpaint(counted, x, m, tmp_path, **base)
    hidden = x.clone()
    hidden[m.expand_as(x) > 0.5] = 0.0  # other hidden pixels: other inputs (the cache never decides what is hidden)
    variants = [
        (x, m, {"salt": {"precision": "bf16"}}),  # precision
        (hidden, m, base),  # the images
        (x, make_masks("left", SIZE, 2), base),  # the masks
        (x, m, {**base, "record_every": 2}),  # the recording options
    ]
    for i, (xi, mi, kw) in enumerate(variants, start=2):
        search_cache.cached_inpaint(counted, xi, mi, tmp_path, **kw)
        assert counted.calls == i
    other_seed = Counting(setup(seed=1)[0])  # the search configuration
    search_cache.cached_inpaint(other_seed, x, m, tmp_path, **base)
    with torch.no_grad():
        next(search.G.parameters()).add_(0.01)
    search_cache.cached_inpaint(counted, x, m, tmp_path, **base)  # the generator's weights
    assert other_seed.calls == 1 and counted.calls == len(variants) + 2


def test_an_unreadable_checkpoint_is_searched_again(tmp_path, recwarn):
    search, x, m = setup()
    counted = Counting(search)
    search_cache.cached_inpaint(counted, x, m, tmp_path)
    (path,) = tmp_path.glob("zsearch_*.pt")
    path.write_bytes(b"not a checkpoint")
    r = search_cache.cached_inpaint(counted, x, m, tmp_path)
    assert counted.calls == 2 and r.completed.shape == x.shape
    assert any("unreadable" in str(w.message) for w in recwarn.list)
    assert torch.load(path, weights_only=False).completed.shape == x.shape  # rewritten


def test_prune_keeps_only_the_searches_of_this_run(tmp_path):
    search, x, m = setup()
    used: set = set()
    search_cache.cached_inpaint(search, x, m, tmp_path, used=used)
    old = tmp_path / "zsearch_0123.pt"
    old.write_bytes(b"an earlier configuration's result")
    keep = tmp_path / "notes.txt"  # not a search checkpoint: never touched
    keep.write_text("mine")
    assert search_cache.prune(tmp_path, used) == [old]
    assert not old.exists() and keep.exists() and all(p.exists() for p in used)
