"""Measure torch.fft.rfft + irfft (float32, batch of 8 rows, 1 thread) at every 7-smooth size
in [2**12, 2**19]; writes benchmarks/results/cpu-2core-fft-sizes.json. Used to build
gpuaug/functional/fft_sizes.py (sizes faster than every larger candidate)."""
import json, platform, sys, time
import torch

torch.set_num_threads(1)
LO, HI, ROWS, REPS = 1 << 12, 1 << 19, 8, 3


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


def main():
    sizes = smooth(LO, HI)
    x = torch.randn(ROWS, HI)
    res = {n: [] for n in sizes}
    for rep in range(REPS):  # interleaved: every size once per repeat
        for n in sizes:
            xs = x[:, :n]
            t0, c0 = time.perf_counter(), time.process_time()
            torch.fft.irfft(torch.fft.rfft(xs, n=n), n=n)
            res[n].append((time.process_time() - c0, time.perf_counter() - t0))
    rows = [{"n": n, "cpu_us_per_row": min(c for c, _ in v) / ROWS * 1e6,
             "wall_us_per_row": min(w for _, w in v) / ROWS * 1e6} for n, v in res.items()]
    json.dump({"command": " ".join(sys.argv), "torch": torch.__version__, "python": platform.python_version(),
               "machine": platform.processor() or platform.machine(), "threads": 1, "rows": ROWS, "repeats": REPS,
               "dtype": "float32", "what": "rfft(n) + irfft(n) of a (rows, n) float32 tensor, min over repeats",
               "sizes": rows}, open("benchmarks/results/cpu-2core-fft-sizes.json", "w"), indent=1)
    print(len(rows), "sizes")


if __name__ == "__main__":
    main()
