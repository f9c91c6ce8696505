"""Reading a course from the modulestore takes memory that follows its shape, plus a slot per block."""

from __future__ import annotations

import gc
import tracemalloc

from event_sinks.courses.modulestore import read_modulestore
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course


def walk_peak(n_blocks: int, sections: int) -> tuple[int, int]:
    """(blocks walked, peak bytes allocated) reading and walking a stand-in course, keeping no block."""
    store = StandInModuleStore([synthetic_course("Mem", "C", "R", n_blocks, sections=sections)])
    gc.collect()
    tracemalloc.start()  # after the structure is built: that is the store's memory, not the reader's
    try:
        walked = 0
        for _ in read_modulestore("course-v1:Mem+C+R", store=store).blocks():
            walked += 1
        return walked, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_walk_memory_follows_the_shape_plus_a_few_bytes_per_block_placed():
    """The stand-in caches every child on its parent, as XBlock does; the walk lets each cache go once
    the children are taken, so a block is freed when the walk has passed it: the walk's own memory is
    O(depth x siblings). What grows with the course is the set of blocks placed so far (each block is
    read once; see the module docstring of event_sinks.courses.modulestore): a slot per block, keyed by
    the block ids the structure holds already, and one key string per container. The two courses have
    the same shape below the root (about 59 subsections per section; 10 and 100 sections)."""
    walk_peak(1_000, 10)  # imports and first-use caches, outside the measures
    (small_n, small), (big_n, big) = walk_peak(10_000, 10), walk_peak(100_000, 100)
    assert (small_n, big_n) == (10_000, 100_000)
    per_block = (big - small) / (big_n - small_n)
    # Holding the walked blocks would take ~580 bytes per block: about 6 MB for 10k blocks, 58 MB for 100k.
    assert per_block < 100, f"peak {big / 1e6:.2f} MB for 100k blocks against {small / 1e6:.2f} MB for 10k"
    print(f"\n[memory] modulestore walk: peak {small / 1e6:.2f} MB for 10k blocks, {big / 1e6:.2f} MB for 100k "
          f"({per_block:.0f} bytes per block placed)")
