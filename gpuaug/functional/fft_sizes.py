"""FFT sizes measured fast: the convolution size table of :func:`gpuaug.functional.reverb.reverb`.

:data:`FAST_SIZES` are the 7-smooth sizes (2^a 3^b 5^c 7^d) in [2^12, 2^19] whose measured
``torch.fft.rfft`` + ``irfft`` time (float32, one thread, torch 2.13.0+cpu, this project's
2-core CPU; ``benchmarks/fft_sizes_measure.py``, results in
``benchmarks/results/cpu-2core-fft-sizes.json``) is below that of every larger 7-smooth
size: for a needed length ``n`` the smallest table size ``>= n`` is then the fastest
7-smooth size ``>= n`` that was measured. 83 of the 143 are 5-smooth; smooth sizes that
lose to a larger one (e.g. 196,608 = 2^16 3 loses to 204,800) are left out. Outside the
table the next 5-smooth size is used. Sizes with a large prime factor are several times
slower (e.g. 180,500 = 2^2 5^3 19^2 against 184,320: ``benchmarks/results/kernel-timings.md``).

:data:`POCKETFFT_SIZES` is the same kind of table for the FFTs of the CPU reverb kernel: scipy's
pocketfft ``r2c`` + ``c2r`` into kept buffers (:mod:`gpuaug.kernels._fft_into`), float32, 8
rows per call, one thread, min over 5 interleaved repeats (``benchmarks/fft_sizes_measure.py
--fft pocketfft``, ``benchmarks/results/cpu-1thread-fft-sizes-pocketfft.json``), a size kept
unless a larger one measured more than 3 % faster (neighbouring sizes' times moved by about
that much between runs, and the kernel's passes around its FFTs cost in proportion to the
size). The two libraries favour different sizes: for the 8 s clips' 180,500 samples the torch
table gives 186,624 (1,581 us per row through pocketfft) and this one 184,320 (1,210 us); over
521 needed lengths in [5121, 524288) the torch table's choice took a median 1.30x (10th / 90th
percentile 1.03x / 1.71x) the pocketfft time of this table's choice, in that run.
"""
from __future__ import annotations

import bisect

__all__ = ["FAST_SIZES", "POCKETFFT_SIZES", "FFT_TABLES", "fast_fft_size", "next_5_smooth"]

#: Measured-fast FFT sizes, ascending (module doc).
FAST_SIZES = (
    4608, 4704, 5120, 5376, 5600, 5760, 6144, 6272, 6400, 6480, 6720, 6912, 7168, 7200, 7680, 8192,
    8400, 9216, 9600, 10240, 10368, 10752, 10976, 11200, 11520, 12288, 12800, 12960, 13440, 13824,
    14112, 14336, 16384, 17280, 17920, 18144, 18816, 20480, 20736, 21504, 23040, 24192, 25088,
    25200, 28672, 28800, 32768, 34560, 35280, 35840, 37632, 38400, 38416, 39200, 43904, 44800,
    45360, 50176, 50400, 53760, 55296, 56448, 57344, 57600, 58320, 62720, 69120, 69984, 70000,
    70560, 72576, 76832, 80640, 82944, 89600, 100352, 100800, 103680, 105000, 105840, 108000,
    108864, 109760, 120960, 125440, 126000, 129024, 131072, 131712, 140000, 153600, 153664, 156800,
    157464, 160000, 163296, 165888, 169344, 175616, 186624, 193536, 196000, 204120, 204800, 207360,
    215040, 216000, 217728, 219520, 222264, 240000, 256000, 262144, 268800, 276480, 279936, 280000,
    288000, 290304, 301056, 302400, 307328, 311040, 320000, 322560, 324000, 336000, 338688, 373248,
    376320, 387072, 400000, 411600, 420000, 439040, 441000, 460800, 466560, 483840, 497664, 501760,
    504000, 524288
)

#: Measured-fast sizes of scipy's pocketfft (the CPU reverb kernel's FFTs), ascending (module doc).
POCKETFFT_SIZES = (
    4500, 4800, 5120, 5625, 6400, 6912, 7200, 7290, 7500, 8100, 8192, 8640, 8748, 9000, 9375, 9600,
    9720, 10125, 10240, 10368, 10935, 11250, 11520, 12000, 12150, 12288, 12500, 12800, 13122, 14336,
    14400, 15000, 15360, 15552, 15625, 20250, 20480, 21870, 24300, 27648, 30720, 32000, 32400,
    33750, 38400, 38880, 39366, 40000, 40960, 43200, 51200, 51840, 54000, 54675, 55296, 56250,
    57600, 58320, 60000, 60750, 61440, 64000, 64800, 65536, 67500, 69120, 76800, 81920, 82944,
    84375, 96000, 98304, 98415, 100000, 103680, 104976, 115200, 116640, 121500, 124416, 125000,
    144000, 147456, 150000, 153600, 155520, 160000, 162000, 163840, 164025, 165888, 172032, 180000,
    184320, 189000, 192000, 196608, 200000, 245760, 256000, 312500, 314928, 327680, 345600, 388800,
    390625, 414720, 421875, 437400, 442368, 450000, 455625, 480000, 486000, 491520, 492075, 497664,
    518400, 524288
)

#: The table of each FFT library :func:`fast_fft_size` knows.
FFT_TABLES = {"torch": FAST_SIZES, "pocketfft": POCKETFFT_SIZES}


def next_5_smooth(n: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) >= ``n`` (>= 1)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = -(-n // p35)
            best = min(best, p35 << max(0, (q - 1).bit_length()))
            p35 *= 3
        p5 *= 5
    return best


def fast_fft_size(n: int, fft: str = "torch") -> int:
    """The FFT size for a linear convolution of length ``n`` computed by ``fft`` (a key of
    :data:`FFT_TABLES`: ``"torch"`` for ``torch.fft``, ``"pocketfft"`` for the CPU reverb
    kernel's scipy FFTs): the smallest entry ``>= n`` of its table, or the next 5-smooth size
    outside the table's range."""
    table = FFT_TABLES.get(fft)
    if table is None:
        raise ValueError(f"fast_fft_size: fft must be one of {sorted(FFT_TABLES)}, got {fft!r}")
    n = max(1, int(n))
    if n < table[0] or n > table[-1]:
        return next_5_smooth(n)
    return table[bisect.bisect_left(table, n)]
