"""Measure rfft + irfft (float32, batch of 8 rows, 1 thread) at every 7-smooth size in
[2**12, 2**19], interleaved over repeats, and the measured-fast table built from it (the sizes
faster than every larger candidate, by :data:`TOLERANCE`: :mod:`gpuaug.functional.fft_sizes`).

``--fft torch``: ``torch.fft.rfft`` + ``irfft`` (the torch path's FFTs), written to
benchmarks/results/cpu-2core-fft-sizes.json (:data:`~gpuaug.functional.fft_sizes.FAST_SIZES`).
``--fft pocketfft``: scipy's pocketfft into kept buffers, exactly the calls of the CPU reverb
kernel (:mod:`gpuaug.kernels._fft_into`), written to
benchmarks/results/cpu-1thread-fft-sizes-pocketfft.json
(:data:`~gpuaug.functional.fft_sizes.POCKETFFT_SIZES`).

    .venv/bin/python benchmarks/fft_sizes_measure.py [--fft torch|pocketfft] [--repeats 3]
    .venv/bin/python benchmarks/fft_sizes_measure.py --table benchmarks/results/cpu-1thread-fft-sizes-pocketfft.json
"""
import argparse, json, platform, sys, time
from pathlib import Path

import numpy as np
import scipy
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LO, HI, ROWS = 1 << 12, 1 << 19, 8
OUT = {"torch": "cpu-2core-fft-sizes.json", "pocketfft": "cpu-1thread-fft-sizes-pocketfft.json"}


def smooth(lo, hi, primes=(2, 3, 5, 7)):
    out = {1}
    for p in primes:
        grow = set(out)
        for v in out:
            x = v * p
            while x <= hi:
                grow.add(x)
                x *= p
        out = grow
    return sorted(v for v in out if lo <= v <= hi)


#: The margin by which a larger size must be faster to drop a smaller one from a table, per library:
#: 0 for torch (the rule FAST_SIZES was built with); 3 % for pocketfft, whose measured times of
#: neighbouring sizes differ by about that much from run to run, and whose caller's passes around
#: the FFTs (reverb kernel: load, multiply, store) cost in proportion to the size.
TOLERANCE = {"torch": 0.0, "pocketfft": 0.03}


def fast_table(sizes: list[dict], tolerance: float = 0.0) -> list[int]:
    """The sizes whose ``cpu_us_per_row`` is below ``1 + tolerance`` times that of every larger
    measured size, ascending."""
    keep, best = [], float("inf")
    for row in sorted(sizes, key=lambda r: -r["n"]):
        if row["cpu_us_per_row"] < best * (1 + tolerance):
            keep.append(row["n"])
        best = min(best, row["cpu_us_per_row"])
    return sorted(keep)


def transform(fft: str):
    """A callable ``run(n)``: the ``fft`` library's rfft + irfft of ``(ROWS, n)`` float32 samples,
    read from one buffer of the largest size (torch: row slices of a ``(ROWS, HI)`` tensor, as the
    torch table was measured; pocketfft: a C-contiguous ``(ROWS, n)`` view, written back by the
    inverse FFT as in the reverb kernel)."""
    if fft == "torch":
        x = torch.randn(ROWS, HI)
        return lambda n: torch.fft.irfft(torch.fft.rfft(x[:, :n], n=n), n=n)
    from gpuaug.kernels._fft_into import irfft_into, rfft_into
    flat = np.random.default_rng(0).standard_normal(ROWS * HI).astype(np.float32)
    flat_spec = np.empty(ROWS * (HI // 2 + 1), np.complex64)

    def run(n):
        x, spec = flat[:ROWS * n].reshape(ROWS, n), flat_spec[:ROWS * (n // 2 + 1)].reshape(ROWS, n // 2 + 1)
        rfft_into(x, spec, 1)
        irfft_into(spec, x, 1)
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fft", choices=sorted(OUT), default="torch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--table", help="print the measured-fast table of this JSON and exit")
    args = ap.parse_args()
    if args.table:
        report = json.loads(Path(args.table).read_text())
        print(tuple(fast_table(report["sizes"], TOLERANCE[report.get("fft", "torch")])))
        return
    torch.set_num_threads(1)
    sizes = smooth(LO, HI)
    run = transform(args.fft)
    res = {n: [] for n in sizes}
    for rep in range(args.repeats):  # interleaved: every size once per repeat
        for n in sizes:
            t0, c0 = time.perf_counter(), time.process_time()
            run(n)
            res[n].append((time.process_time() - c0, time.perf_counter() - t0))
    rows = [{"n": n, "cpu_us_per_row": min(c for c, _ in v) / ROWS * 1e6,
             "wall_us_per_row": min(w for _, w in v) / ROWS * 1e6} for n, v in res.items()]
    what = {"torch": "torch.fft.rfft(n) + irfft(n) of a (rows, n) float32 tensor",
            "pocketfft": "scipy's pocketfft r2c + c2r of a (rows, n) float32 array into kept buffers "
                         "(gpuaug.kernels._fft_into, the CPU reverb kernel's calls)"}[args.fft]
    out = ROOT / "benchmarks" / "results" / OUT[args.fft]
    out.write_text(json.dumps({
        "command": " ".join(["python"] + sys.argv), "fft": args.fft, "torch": torch.__version__, "scipy": scipy.__version__,
        "python": platform.python_version(), "machine": platform.processor() or platform.machine(), "threads": 1,
        "rows": ROWS, "repeats": args.repeats, "dtype": "float32", "what": what + ", min over repeats",
        "sizes": rows, "fast_table_tolerance": TOLERANCE[args.fft], "fast_table": fast_table(rows, TOLERANCE[args.fft])},
        indent=1))
    print(len(rows), "sizes; fast table of", len(fast_table(rows, TOLERANCE[args.fft])), "sizes; wrote", out)


if __name__ == "__main__":
    main()
