"""The allocator setting keeps freed frame-sized buffers: counted in page faults, in a fresh process."""
from __future__ import annotations

import subprocess
import sys

import pytest

# A frame's worth of temporaries, ten 4 MiB buffers alive at once, allocated and freed 10 times;
# prints the minor page faults that costs before and after keep_freed_memory(). With glibc's
# defaults the freed 40 MiB exceed the trim threshold and go back to the kernel, so every round
# faults its ~10 000 pages in again.
SCRIPT = """
import resource
import numpy as np
from models.ops.allocator import keep_freed_memory

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        buffers = [np.ones(1 << 20, np.float32) for _ in range(10)]
        del buffers
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

first = faults()
assert keep_freed_memory()
faults()  # the heap grows once to hold the buffer
print(first, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_buffers_stop_page_faulting():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    before, after = map(int, out.split())
    assert before > 9 * 10 * 500  # glibc's defaults: faulted in again every round
    assert after < 500             # kept: the same pages are reused
