"""Reverb speed: before (the algorithm at git HEAD, untrimmed RIR bank) vs after (this tree,
RIRs trimmed at -60 dB) vs the FFT floor (rfft of the clips + rfft of the RIRs + irfft at the
size `after` chooses, nothing else), on 32 clips of 8 s at 16 kHz with RIRs drawn from the
real folder /work/shared/data/rir. One thread; per-clip CPU (time.process_time) and wall ms,
repeats interleaved, min and median over repeats. Also the float32 error against a float64
reference (the HEAD algorithm in float64 on the same trimmed RIRs). Issue 11 item 1 rows:
``transform_batches_cached`` / ``_uncached`` (Reverb(bank).apply over N_BATCHES consecutive
batches, RIR spectra cache warmed vs off) and ``mixed_2s_8s_bucketed`` / ``_unbucketed`` (28
clips of 2 s + 4 of 8 s, length bucketing on vs off). The fused CPU kernel (op ``reverb``,
``kernels/reverb_io.py``): ``transform_batches_torch`` (the same transform on the torch path),
``transform_batches_fresh_buffers`` (the kernel with a workspace that keeps nothing: FFT buffers
allocated per call), ``transform_reverb_fade_fused`` / ``transform_reverb_then_fade`` (a 2 %/s
fade in the kernel's output pass vs the fade op after it), ``transform_batches_passes_of_8`` /
``_16`` (the cached transform with the kernel's passes bounded to 8 or 16 clips instead of one
pass of 32), ``transform_batches_torch_sizes`` (the cached transform at the FFT sizes of torch's
table instead of pocketfft's: 186,624 instead of 184,320 here), ``fft_floor_x_only_out`` (rfft + irfft of the clips into kept buffers: the floor
with cached RIR spectra and no allocation),
``fft_floor_x_only_scipy`` (the same FFTs through ``scipy.fft``; ``_rowsK``: K clips per call) and
``fft_floor_kernel_calls`` (exactly the CPU kernel's FFT calls: scipy's pocketfft into kept
buffers, ``kernels/_fft_into.py``, in the kernel's passes of ``pass_clips`` clips).

The cases run in a fresh random order in every repeat (seeded), so no case always follows the
same one; besides the min and median of each case, ``paired`` gives, per repeat, the transform
row's time over each floor's time in the same repeat, and their median and quartiles.

    .venv/bin/python benchmarks/reverb_speed.py [--repeats 7] [--rir-dir DIR]
Writes benchmarks/results/cpu-2core-reverb-speed.json.
"""
from __future__ import annotations

import argparse, json, platform, random, statistics, subprocess, sys, time, types
from pathlib import Path

import scipy.fft
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
B, SECONDS, SR = 32, 8.0, 16000
N_BATCHES = 4  # consecutive batches of the transform rows
FLOOR_ROWS = (4, 8, 16)  # clips per FFT call of the chunked scipy floors
PASS_ROWS = (8, 16)  # the transform with the kernel's passes bounded to this many clips (default: one pass of 32)


#: The commit before issue 11's reverb work (the 'before' algorithm).
OLD_REV = "065f858"


def head_reverb():
    """The reverb function as committed at :data:`OLD_REV` (the 'before' algorithm)."""
    src = subprocess.run(["git", "show", f"{OLD_REV}:gpuaug/functional/reverb.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType("reverb_before")
    exec(compile(src, f"{OLD_REV}:gpuaug/functional/reverb.py", "exec"), mod.__dict__)
    return mod.reverb, mod._next_fast_len


def timed(fn, clips=B):
    c, w = time.process_time(), time.perf_counter()
    fn()
    return (time.process_time() - c) / clips * 1e3, (time.perf_counter() - w) / clips * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rir-dir", default="/work/shared/data/rir")
    args = ap.parse_args()
    if not Path(args.rir_dir).is_dir():
        print(f"skipped: RIR folder {args.rir_dir} not found")
        return
    torch.set_num_threads(1)
    from gpuaug.data.layouts import rir_bank_from_folder
    from gpuaug.functional.reverb import _next_fast_len, reverb
    import gpuaug.kernels.reverb_io as reverb_io
    from gpuaug.kernels._fft_into import irfft_into, rfft_into
    reverb_mod = sys.modules["gpuaug.functional.reverb"]  # the module (its name in gpuaug.functional is the op)
    old_reverb, old_fast_len = head_reverb()

    full = rir_bank_from_folder(args.rir_dir, SR, trim_db=None)
    trimmed = rir_bank_from_folder(args.rir_dir, SR)  # trim_db=60 (the default)
    g = torch.Generator().manual_seed(0)
    index = torch.randint(len(full), (B,), generator=g)
    T = int(SECONDS * SR)
    wave = torch.randn(B, T, generator=g) * 0.1 * torch.sin(torch.arange(T) / 2000.0).abs()  # speech-like envelope
    lengths = torch.full((B,), T)
    h_full, l_full = full.gather(index)
    h_trim, l_trim = trimmed.gather(index)
    d_full, d_trim = full.peak_index[index], trimmed.peak_index[index]

    n_after = _next_fast_len(T + min(int(l_trim.max()), T + int(d_trim.max())) - 1, "pocketfft")  # the CPU kernel's table
    n_before = old_fast_len(T + min(int(l_full.max()), T + int(d_full.max())) - 1)

    def before():
        old_reverb(wave, lengths, h_full, l_full, normalize="energy", direct=d_full)

    def after():
        reverb(wave, lengths, h_trim, l_trim, normalize="energy", direct=d_trim)

    used, row = torch.unique(index, return_inverse=True)  # what Reverb.apply passes: each RIR once
    h_used, l_used = trimmed.gather(used)

    def after_shared():
        reverb(wave, lengths, h_used, l_used, normalize="energy", direct=trimmed.peak_index[used], rir_index=row)

    def floor():
        X = torch.fft.rfft(wave, n=n_after)
        H = torch.fft.rfft(h_trim, n=n_after)
        torch.fft.irfft(X * H, n=n_after)

    def floor_x():
        torch.fft.irfft(torch.fft.rfft(wave, n=n_after), n=n_after)

    from gpuaug.functional._batch import finite_checked

    def after_trusted():  # as inside a Pipeline call: the input NaN/Inf scan already done once
        with finite_checked():
            after()

    def after_shared_trusted():  # as Reverb.apply inside a Pipeline call
        with finite_checked():
            after_shared()

    # (a) the Reverb transform over several consecutive batches (same bank, fresh draws each batch),
    # RIR spectra cached across batches vs recomputed per batch; timed per batch sequence.
    from gpuaug._workspace import Workspace
    from gpuaug.functional import fade
    from gpuaug.transforms import Reverb

    class _Ctx:
        sample_rate = SR

    seq = []
    for s_ in range(N_BATCHES):
        gg = torch.Generator().manual_seed(100 + s_)
        seq.append({"u_category": torch.rand(B, generator=gg, dtype=torch.float64),
                    "u_item": torch.rand(B, generator=gg, dtype=torch.float64)})
    cached_tr = Reverb(trimmed)
    for p_ in seq:  # warm the cache: the timed runs are the steady state of a long epoch
        cached_tr.apply(wave, lengths, p_, _Ctx())

    def transform_seq(tr):
        def run():
            with finite_checked():
                for p_ in seq:
                    tr.apply(wave, lengths, p_, _Ctx())
        return run

    # (b) a mixed-length batch: 28 clips of 2 s + 4 of 8 s, bucketed by length vs one FFT size
    mixed_len = torch.tensor([2 * SR] * (B - 4) + [T] * 4)
    mixed = wave * (torch.arange(T) < mixed_len[:, None])

    def mixed_bucketed():
        with finite_checked():
            reverb(mixed, mixed_len, h_used, l_used, normalize="energy", direct=trimmed.peak_index[used], rir_index=row)

    def mixed_unbucketed():
        with finite_checked():
            reverb(mixed, mixed_len, h_used, l_used, normalize="energy", direct=trimmed.peak_index[used], rir_index=row,
                   bucket=False)

    torch_tr = Reverb(trimmed, backend="torch")
    fresh_tr = Reverb(trimmed)
    fresh_tr.workspace = Workspace(max_bytes=0)  # keeps nothing: every call allocates its FFT buffers
    for tr_ in (torch_tr, fresh_tr):
        for p_ in seq:
            tr_.apply(wave, lengths, p_, _Ctx())
    fade_spec = {"sample_rate": SR, "rate_per_s": 0.02, "direction": torch.arange(B) % 2 * 2 - 1}

    def reverb_fade(fused):
        def run():
            with finite_checked():
                for p_ in seq:
                    if fused:
                        cached_tr.apply(wave, lengths, p_, _Ctx(), epilogue=fade_spec)
                    else:
                        out_ = cached_tr.apply(wave, lengths, p_, _Ctx())[0]
                        fade(out_, lengths, **fade_spec)
        return run

    buf = torch.zeros(B, n_after)
    buf[:, :T] = wave
    spec_buf = torch.empty(B, n_after // 2 + 1, dtype=torch.complex64)

    def floor_x_out():
        torch.fft.rfft(buf, out=spec_buf)
        torch.fft.irfft(spec_buf, n=n_after, out=buf)

    buf_np = buf.numpy()

    def floor_x_scipy():  # the FFTs the CPU kernel calls (pocketfft through scipy, outputs allocated)
        scipy.fft.irfft(scipy.fft.rfft(buf_np, axis=-1, workers=1), n=n_after, axis=-1, workers=1, overwrite_x=True)

    def floor_x_scipy_rows(k):  # the same FFTs k clips per call (pocketfft vectorises 4 rows; fewer bytes in flight)
        def run():
            for a in range(0, B, k):
                scipy.fft.irfft(scipy.fft.rfft(buf_np[a:a + k], axis=-1, workers=1), n=n_after, axis=-1, workers=1,
                                overwrite_x=True)
        return run

    step = reverb_io.pass_clips(B, 1, n_after, torch.float32)
    kernel_buf = buf_np.copy()  # overwritten by the inverse FFTs, as the kernel's buffer is
    kernel_spec = torch.empty(step, n_after // 2 + 1, dtype=torch.complex64).numpy()

    def floor_kernel_calls():  # the kernel's FFT calls alone: pocketfft into kept buffers, its passes
        for a in range(0, B, step):
            rows = kernel_buf[a:a + step]
            rfft_into(rows, kernel_spec[:len(rows)], 1)
            irfft_into(kernel_spec[:len(rows)], rows, 1)

    def transform_passes_of(k):  # the cached transform with the kernel's passes bounded to k clips
        run_cached = transform_seq(cached_tr)

        def run():
            kept = reverb_io.PASS_BYTES
            reverb_io.PASS_BYTES = k * n_after * 4
            try:
                run_cached()
            finally:
                reverb_io.PASS_BYTES = kept
        return run

    def transform_torch_sizes():  # the cached transform with FFT sizes from torch's table (186,624 at 8 s)
        kept = reverb_mod._fft_of
        reverb_mod._fft_of = lambda kernel: "torch"
        try:
            transform_seq(cached_tr)()
        finally:
            reverb_mod._fft_of = kept

    cases = {"before": before, "after": after, "after_finite_trusted": after_trusted,
             "after_shared_spectra_trusted": after_shared_trusted, "fft_floor": floor, "fft_floor_x_only": floor_x,
             "transform_batches_cached": transform_seq(cached_tr),
             "transform_batches_uncached": transform_seq(Reverb(trimmed, cache_bytes=0)),
             "mixed_2s_8s_bucketed": mixed_bucketed, "mixed_2s_8s_unbucketed": mixed_unbucketed,
             "transform_batches_torch": transform_seq(torch_tr), "transform_batches_fresh_buffers": transform_seq(fresh_tr),
             "transform_reverb_fade_fused": reverb_fade(True), "transform_reverb_then_fade": reverb_fade(False),
             "fft_floor_x_only_out": floor_x_out, "fft_floor_x_only_scipy": floor_x_scipy,
             **{f"fft_floor_x_only_scipy_rows{k}": floor_x_scipy_rows(k) for k in FLOOR_ROWS},
             "fft_floor_kernel_calls": floor_kernel_calls,
             **{f"transform_batches_passes_of_{k}": transform_passes_of(k) for k in PASS_ROWS},
             "transform_batches_torch_sizes": transform_torch_sizes}
    per = {k: B * N_BATCHES for k in ("transform_batches_cached", "transform_batches_uncached", "transform_batches_torch",
                                      "transform_batches_fresh_buffers", "transform_reverb_fade_fused",
                                      "transform_reverb_then_fade", "transform_batches_torch_sizes",
                                      *(f"transform_batches_passes_of_{k}" for k in PASS_ROWS))}
    for fn in cases.values():
        fn()  # warm-up
    runs = {k: [] for k in cases}
    order = list(cases)
    for r in range(args.repeats):  # interleaved, in a fresh order every repeat
        random.Random(r).shuffle(order)
        for k in order:
            runs[k].append(timed(cases[k], per.get(k, B)))
    res = {k: {"cpu_ms_per_clip_min": min(c for c, _ in v), "cpu_ms_per_clip_median": statistics.median(c for c, _ in v),
               "wall_ms_per_clip_min": min(w for _, w in v), "wall_ms_per_clip_median": statistics.median(w for _, w in v),
               "cpu_ms_per_clip_all": [round(c, 4) for c, _ in v], "wall_ms_per_clip_all": [round(w, 4) for _, w in v]}
           for k, v in runs.items()}
    for k in ("before", "after", "after_finite_trusted", "after_shared_spectra_trusted"):
        for m in ("cpu_ms_per_clip_min", "cpu_ms_per_clip_median"):
            res[k][m.replace("cpu_ms_per_clip", "ratio_to_floor_cpu")] = res[k][m] / res["fft_floor"][m]

    for k in ("transform_batches_cached", "transform_batches_torch", "transform_batches_fresh_buffers"):
        for m in ("cpu_ms_per_clip_min", "cpu_ms_per_clip_median"):
            res[k][m.replace("cpu_ms_per_clip", "ratio_to_floor_x_only_out_cpu")] = res[k][m] / res["fft_floor_x_only_out"][m]
            res[k][m.replace("cpu_ms_per_clip", "ratio_to_floor_x_only_scipy_cpu")] = res[k][m] / res["fft_floor_x_only_scipy"][m]
    floors = (["fft_floor_x_only_out", "fft_floor_x_only_scipy"] + [f"fft_floor_x_only_scipy_rows{k}" for k in FLOOR_ROWS]
              + ["fft_floor_kernel_calls"])
    for m in ("cpu_ms_per_clip_min", "cpu_ms_per_clip_median"):
        best = min(floors, key=lambda f: res[f][m])
        for k in ("transform_batches_cached", "transform_batches_torch", "transform_batches_fresh_buffers"):
            res[k][m.replace("cpu_ms_per_clip", "ratio_to_best_floor_cpu")] = res[k][m] / res[best][m]
            res[k][m.replace("cpu_ms_per_clip", "best_floor")] = best
    def quartiles(v):
        q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
        return {"median": q[1], "q1": q[0], "q3": q[2]}

    paired = {f: quartiles([a / b for (a, _), (b, _) in zip(runs["transform_batches_cached"], runs[f])]) for f in floors}
    res["transform_batches_cached"]["paired_ratio_cpu_to_floor"] = paired
    for a_, b_ in (("transform_batches_cached", "transform_batches_uncached"),
                   ("mixed_2s_8s_bucketed", "mixed_2s_8s_unbucketed"),
                   ("transform_batches_cached", "transform_batches_torch"),
                   ("transform_batches_cached", "transform_batches_fresh_buffers"),
                   ("transform_reverb_fade_fused", "transform_reverb_then_fade"),
                   ("transform_batches_cached", "transform_batches_torch_sizes"),
                   *(("transform_batches_cached", f"transform_batches_passes_of_{k}") for k in PASS_ROWS)):
        for m in ("cpu_ms_per_clip_min", "cpu_ms_per_clip_median"):
            res[a_][m.replace("cpu_ms_per_clip", f"speedup_cpu_vs_{b_}")] = res[b_][m] / res[a_][m]
    mb, _ = reverb(mixed, mixed_len, h_used, l_used, direct=trimmed.peak_index[used], rir_index=row)
    mu, _ = reverb(mixed, mixed_len, h_used, l_used, direct=trimmed.peak_index[used], rir_index=row, bucket=False)
    bucket_err = float((mb - mu).abs().max() / mu.abs().max())
    ca = cached_tr.apply(wave, lengths, seq[0], _Ctx())[0]
    cu = Reverb(trimmed, cache_bytes=0).apply(wave, lengths, seq[0], _Ctx())[0]
    cache_identical = bool(torch.equal(ca, cu))
    ct = torch_tr.apply(wave, lengths, seq[0], _Ctx())[0]
    kernel_vs_torch = float((ca - ct).abs().max() / ct.abs().max())
    fused_out = cached_tr.apply(wave, lengths, seq[0], _Ctx(), epilogue=fade_spec)[0]
    fade_bit_identical = bool(torch.equal(fused_out, fade(ca, lengths, **fade_spec)[0]))

    # accuracy: float32 after vs the HEAD algorithm in float64 on the same trimmed RIRs
    out32, _ = reverb(wave, lengths, h_trim, l_trim, normalize="energy", direct=d_trim)
    ref64, _ = old_reverb(wave.double(), lengths, h_trim.double(), l_trim, normalize="energy", direct=d_trim)
    untrimmed64, _ = old_reverb(wave.double(), lengths, h_full.double(), l_full, normalize="energy", direct=d_full)
    peak = ref64.abs().amax(dim=1)
    err = ((out32.double() - ref64).abs().amax(dim=1) / peak).max().item()
    trim_err = ((ref64 - untrimmed64).square().sum(1) / untrimmed64.square().sum(1)).max().item()
    report = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "threads": torch.get_num_threads(), "repeats": args.repeats, "batch": B, "seconds": SECONDS, "sample_rate": SR,
        "rir_names_drawn": sorted({full.names[i] for i in index.tolist()}),
        "rir_lengths_untrimmed": dict(zip(full.names, full.lengths.tolist())),
        "rir_lengths_trimmed_60db": dict(zip(trimmed.names, trimmed.lengths.tolist())),
        "n_fft_before": n_before, "n_fft_after": n_after,
        "floor_definition": "rfft(clips, n) + rfft(rirs, n) + irfft(product, n) at n_fft_after; fft_floor_x_only: rfft + irfft "
                            "of the clips; _out: torch into kept buffers; _scipy: scipy.fft, all 32 clips per call or "
                            "(_rowsK) K per call; fft_floor_kernel_calls: the CPU kernel's own FFT calls (pocketfft into "
                            "kept buffers, passes of kernel_pass_clips); ratio_to_best_floor: to the lowest of these "
                            "x-only floors; paired_ratio_cpu_to_floor: per repeat, the transform row over each floor in "
                            "the same repeat (median, quartiles); cases in a fresh random order every repeat",
        "kernel_pass_clips": step,
        "results": res,
        "max_abs_err_float32_vs_float64_rel_to_peak": err,
        "trimming_effect_max_rel_error_energy": trim_err,
        "transform_rows": f"Reverb(bank).apply over {N_BATCHES} consecutive batches of {B} x {SECONDS:g} s (ms per clip), "
                          "cache warmed first (steady state) vs cache_bytes=0",
        "transform_cache_stats": dict(cached_tr.rir_cache_stats),
        "transform_cached_bit_identical": cache_identical,
        "mixed_rows": f"{B - 4} clips of 2 s + 4 of {SECONDS:g} s, rir_index as Reverb.apply, finite scan trusted",
        "mixed_bucketed_max_abs_diff_rel_to_peak": bucket_err,
        "kernel_vs_torch_max_abs_diff_rel_to_peak": kernel_vs_torch,
        "fused_fade_bit_identical_to_reverb_then_fade": fade_bit_identical,
        "workspace_stats": dict(cached_tr.workspace.stats),
    }
    out = ROOT / "benchmarks" / "results" / "cpu-2core-reverb-speed.json"
    out.write_text(json.dumps(report, indent=1))
    for k, v in res.items():
        print(f"{k:28s} cpu {v['cpu_ms_per_clip_min']:.3f} (median {v['cpu_ms_per_clip_median']:.3f}) ms/clip, "
              f"wall {v['wall_ms_per_clip_min']:.3f} (median {v['wall_ms_per_clip_median']:.3f})")
    print(f"n_fft before {n_before}, after {n_after}; float32 err {err:.2e} of peak; trimming energy error {trim_err:.2e}")
    print(f"cache identical {cache_identical}, stats {cached_tr.rir_cache_stats}; bucketed diff {bucket_err:.2e} of peak")
    tc = res["transform_batches_cached"]
    print(f"transform_batches_cached / best floor: {tc['ratio_to_best_floor_cpu_min']:.2f}x ({tc['best_floor_min']}, min), "
          f"{tc['ratio_to_best_floor_cpu_median']:.2f}x ({tc['best_floor_median']}, median)")
    for f, q in paired.items():
        print(f"paired transform_batches_cached / {f}: median {q['median']:.3f} (quartiles {q['q1']:.3f}-{q['q3']:.3f})")
    print("wrote", out)


if __name__ == "__main__":
    main()
