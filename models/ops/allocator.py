"""Keep freed frame-sized buffers in the process instead of handing them back to the kernel.

Every per-pixel step allocates temporaries of a few hundred kilobytes to a few
megabytes (a 320-px float map, a 720p matte). glibc serves blocks above its
mmap threshold (128 KiB at start, raised only as such blocks are freed) with a
fresh ``mmap`` and returns them with ``munmap``, so the next frame's temporary
page-faults on every 4 KiB page again, and the zeroing of those pages costs more
than the arithmetic. Measured on a 2-core EPYC: the colour-guided matte filter
took 7.7 ms per 720p frame with glibc's defaults and 2.0 ms with freed memory
kept (same inputs, same process otherwise).

Fixing both thresholds keeps the working set of a frame in the heap: memory
stays at the peak of one frame's temporaries, which is what the next frame
needs anyway. Only glibc has ``mallopt``; elsewhere nothing changes.

Kept memory is kept per heap, and glibc gives each thread that allocates a heap
("arena") of its own, up to eight per core. MediaPipe's graphs run many threads
(the selfie, face, hand and pose graphs each have their own), so the kept
memory multiplied: a 1200-frame soak with the pose model grew by about 100 MiB
before it levelled off, and by 2 MiB with two arenas per core, at the same
frame rate (2-core EPYC, ``harmonicam bench`` at 1280×720).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Heaps per core that threads share (glibc's default is eight per core on 64-bit).
ARENAS_PER_CORE = 2
#: Blocks below this come from the heap: a 1080p float32 RGB image (24 MiB) fits; glibc's ceiling is 32 MiB.
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap kept for the next frame before any is returned to the kernel.
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds and bound its arenas for this process (call it before threads
    start: a thread keeps the arena it first allocated in); False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    arenas = ARENAS_PER_CORE * (os.cpu_count() or 1)
    return all(mallopt(param, value) for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                                          (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                                                          (_M_ARENA_MAX, arenas)))
