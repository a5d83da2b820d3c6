"""Compile gate: every GPU kernel of gpuaug compiles for real GPUs, without spills, on a machine
without one.

The tests run the ``@cuda.jit`` kernels on Numba's CUDA simulator when there is no GPU, and
the simulator runs plain Python: it accepts code that the real CUDA target rejects (a
device function calling a plain-Python function, say). This gate compiles, for each
compute capability asked for:

* every Numba CUDA kernel in every signature of its module's ``CUDA_KERNELS`` table
  (:func:`gpuaug.kernels._numba_glue.cuda_entry`: the argument types the torch wrappers
  launch it with) to PTX with the real NVVM (``numba.cuda.compile_ptx``), then assembles
  the PTX with ``ptxas -v -arch=sm_XX`` where ``ptxas`` accepts it, else with nvJitLink
  (``-arch=sm_XX -verbose``, the ptxas of NVVM's own CUDA release: a CUDA 13.0 ``ptxas``
  rejects the PTX ISA 9.5 that NVVM 13.5 writes), parsing registers, spill stores / loads
  and the stack frame;
* every ``__global__`` function of every ``kernels/*.cu`` (the modules' ``CUDA_C_KERNELS``
  tables) with ``nvcc -cubin -arch=sm_XX -Xptxas -v`` plus the NVRTC options CuPy is given
  (``warp_sinc.CUPY_OPTIONS``), and with NVRTC itself (the compiler CuPy uses, where
  ``cuda.bindings.nvrtc`` is installed), same parsing.

It fails (exit status 1) on a compile error, a register spill, a block size whose registers
do not fit (``registers * threads > 65536``), a kernel without a table entry (coverage:
every ``@cuda.jit`` kernel defined in a ``gpuaug.kernels`` module and every ``__global__``
function of a ``.cu``) or a table entry naming no kernel. A missing tool (NVVM, nvcc,
both assemblers) is reported in the JSON and skips that part; ``--require`` makes it fail.

Usage (CI, ``tests/test_compile_gate.py``; 52 compiles in ~25 s on 2 shared cores, ~60 s when
they are fully contended; McAdams' frame kernel alone is 2.4-3.7 s of NVVM per cc)::

    python -m gpuaug.kernels._compile_gate --cc 9.0 8.0 --json benchmarks/results/compile-gate.json

``--f64-cc 9.0`` compiles the float64 signatures for that compute capability only (they
differ from the float32 ones in the array dtypes only). Run it without the simulator
(``NUMBA_ENABLE_CUDASIM`` unset or 0; :func:`main` re-runs itself so when it is set).

No GPU and no driver is needed. One Numba detail: ``compile_ptx(..., cc=...)`` compiles the
kernel for ``cc``, but the ``cuda.jit(device=True)`` functions it calls are compiled by
their dispatcher (``Dispatcher.compile_device``) for
``numba.cuda.dispatcher.get_current_device().compute_capability``, which needs a driver.
:func:`target_device` substitutes an object with the target ``compute_capability`` for
that call and empties the device functions' compiled ``overloads`` (keyed by signature
only) before and after, so each compute capability compiles its own.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from pkgutil import iter_modules

KERNELS_DIR = Path(__file__).resolve().parent
#: Registers per block of every compute capability gpuaug targets (sm_50 .. sm_120).
REGISTERS_PER_BLOCK = 65536
_GLOBAL_RE = re.compile(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+(\w+)\s*\(")


# ------------------------------------------------------------------------------- coverage


def kernel_modules() -> list:
    """Every module of the kernel folder, imported (kernels register on import)."""
    return [import_module(f"gpuaug.kernels.{m.name}") for m in iter_modules([str(KERNELS_DIR)])]


def _is_cuda_kernel(obj) -> bool:
    """A ``@cuda.jit`` kernel (not a device function), real or simulated."""
    from numba import config

    if config.ENABLE_CUDASIM:
        from numba.cuda.simulator.kernel import FakeCUDAKernel

        return isinstance(obj, FakeCUDAKernel) and not obj._device
    from numba.cuda.dispatcher import CUDADispatcher

    return isinstance(obj, CUDADispatcher) and not obj.targetoptions.get("device")


def cu_globals(path: Path) -> list[str]:
    """Names of the ``__global__`` functions of a CUDA C source (comments stripped)."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", path.read_text(), flags=re.S)
    return _GLOBAL_RE.findall(text)


def coverage() -> dict:
    """Kernels found vs gate entries: ``{"numba": [...], "cuda_c": [...], "missing": [...],
    "stale": [...]}`` (``missing``: kernels without an entry; ``stale``: entries naming no
    kernel). Works under the simulator too (no compiler needed)."""
    numba_kernels, missing, stale, cu_listed = [], [], [], {}
    for module in kernel_modules():
        table = getattr(module, "CUDA_KERNELS", {})
        for name, obj in vars(module).items():
            py_func = getattr(obj, "py_func", None)
            if _is_cuda_kernel(obj) and getattr(py_func, "__module__", None) == module.__name__:
                numba_kernels.append(f"{module.__name__}.{name}")
                if name not in table:
                    missing.append(f"{module.__name__}.{name}: @cuda.jit kernel without a CUDA_KERNELS entry")
        for name in table:
            if not _is_cuda_kernel(getattr(module, name, None)):
                stale.append(f"{module.__name__}.CUDA_KERNELS[{name!r}]: no such @cuda.jit kernel")
        for source, spec in getattr(module, "CUDA_C_KERNELS", {}).items():
            for kernel in spec["kernels"]:
                cu_listed[(source, kernel)] = module.__name__
    cuda_c = []
    for path in sorted(KERNELS_DIR.glob("*.cu")):
        for kernel in cu_globals(path):
            cuda_c.append(f"{path.name}:{kernel}")
            if (path.name, kernel) not in cu_listed:
                missing.append(f"{path.name}:{kernel}: __global__ function without a CUDA_C_KERNELS entry")
    for (source, kernel), module in cu_listed.items():
        if f"{source}:{kernel}" not in cuda_c:
            stale.append(f"{module}.CUDA_C_KERNELS[{source!r}]: no __global__ {kernel} in it")
    return {"numba": numba_kernels, "cuda_c": cuda_c, "missing": missing, "stale": stale}


# ------------------------------------------------------------------------------- ptxas output


_STACK_RE = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def parse_ptxas(log: str) -> dict[str, dict]:
    """``{function: {"entry", "registers", "stack_frame", "spill_stores", "spill_loads"}}`` from
    ``ptxas -v`` output (also as printed by nvcc, NVRTC and nvJitLink)."""
    funcs: dict[str, dict] = {}
    entry = prop = None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            entry = m.group(1)
            funcs.setdefault(entry, {})["entry"] = True
            continue
        m = re.search(r"^ptxas info\s*: Function properties for (\S+)", line)
        if m:
            prop = m.group(1)
            funcs.setdefault(prop, {}).setdefault("entry", False)
            continue
        m = _STACK_RE.search(line)
        if m and prop is not None:
            funcs[prop].update(stack_frame=int(m.group(1)), spill_stores=int(m.group(2)),
                               spill_loads=int(m.group(3)))
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and entry is not None:
            funcs[entry]["registers"] = int(m.group(1))
    return funcs


def _summarise(funcs: dict[str, dict], name_part: str | None = None) -> dict:
    """The entry's registers / stack and the spills of every function of its module."""
    entries = [f for f, v in funcs.items() if v.get("entry") and (name_part is None or name_part in f)]
    if len(entries) != 1:
        raise RuntimeError(f"expected one entry function{'' if name_part is None else ' ' + name_part} in the "
                           f"assembler output, found {entries}")
    e = funcs[entries[0]]
    if name_part is None:  # a single-kernel module (Numba): every function is the kernel's
        others = funcs.values()
    else:  # a multi-kernel module (.cu): the entry's own row only (helpers are reported apart)
        others = [e]
    return {"registers": e.get("registers"), "stack_frame": e.get("stack_frame", 0),
            "spill_stores": sum(v.get("spill_stores", 0) for v in others),
            "spill_loads": sum(v.get("spill_loads", 0) for v in others),
            "helpers_spill": sum(v.get("spill_stores", 0) + v.get("spill_loads", 0)
                                 for f, v in funcs.items() if not v.get("entry"))}


# ------------------------------------------------------------------------------- tools


def _tool_version(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"release (\S+), (V\S+)", out)
    return f"{m.group(1).rstrip(',')} ({m.group(2)})" if m else out.strip().splitlines()[-1] if out.strip() else None


def _nvjitlink():
    try:
        from cuda.bindings import nvjitlink

        nvjitlink.version()
        return nvjitlink
    except Exception:  # noqa: BLE001 - not installed / no library
        return None


def _nvrtc():
    try:
        from cuda.bindings import nvrtc

        err, *_ = nvrtc.nvrtcVersion()
        return nvrtc if int(err) == 0 else None
    except Exception:  # noqa: BLE001
        return None


class Assembler:
    """PTX -> cubin with ``-v`` output: the ``ptxas`` binary where it accepts the PTX's ISA
    version, else nvJitLink (see the module docstring)."""

    def __init__(self):
        self.ptxas = shutil.which("ptxas") or (shutil.which("ptxas", path="/usr/local/cuda/bin"))
        self.nvjitlink = _nvjitlink()
        self._ptxas_rejects: set[str] = set()  # PTX ISA versions this ptxas does not know

    def available(self) -> bool:
        return bool(self.ptxas or self.nvjitlink)

    def assemble(self, ptx: str, cc: tuple[int, int], tmp: Path) -> tuple[str, str]:
        """``(tool, log)``; raises ``RuntimeError`` with the log when assembly fails."""
        m = re.search(r"^\.version\s+(\S+)", ptx, flags=re.M)
        isa = m.group(1) if m else "?"
        arch = f"sm_{cc[0]}{cc[1]}"
        if self.ptxas and isa not in self._ptxas_rejects:
            src = tmp / "kernel.ptx"
            src.write_text(ptx)
            res = subprocess.run([self.ptxas, "-v", f"-arch={arch}", str(src), "-o", str(tmp / "kernel.cubin")],
                                 capture_output=True, text=True, timeout=600)
            log = res.stdout + res.stderr
            if res.returncode == 0:
                return "ptxas", log
            if "Unsupported .version" not in log or not self.nvjitlink:
                raise RuntimeError(f"ptxas -arch={arch} failed:\n{log}")
            self._ptxas_rejects.add(isa)
        if not self.nvjitlink:
            raise RuntimeError("no assembler (ptxas / nvJitLink)")
        nj = self.nvjitlink
        opts = [f"-arch={arch}", "-verbose"]
        handle = nj.create(len(opts), opts)
        try:
            data = ptx.encode()
            try:
                nj.add_data(handle, nj.InputType.PTX, data, len(data), "kernel.ptx")
                nj.complete(handle)
            except Exception as e:  # noqa: BLE001
                size = nj.get_error_log_size(handle)
                buf = bytearray(size)
                nj.get_error_log(handle, buf)
                raise RuntimeError(f"nvJitLink -arch={arch} failed: {e}\n{buf.decode(errors='replace')}") from None
            size = nj.get_info_log_size(handle)
            buf = bytearray(size)
            nj.get_info_log(handle, buf)
            return "nvjitlink", buf.decode(errors="replace")
        finally:
            nj.destroy(handle)


# ------------------------------------------------------------------------------- Numba kernels


def _device_functions() -> list:
    from numba.cuda.dispatcher import CUDADispatcher

    found = {}
    for module in kernel_modules():
        for obj in vars(module).values():
            if isinstance(obj, CUDADispatcher) and obj.targetoptions.get("device"):
                found[id(obj)] = obj
    return list(found.values())


@contextmanager
def target_device(cc: tuple[int, int]):
    """Compile device functions for ``cc`` without a driver (see the module docstring)."""
    import numba.cuda.dispatcher as dispatcher

    class _TargetDevice:
        compute_capability = cc

    devices = _device_functions()
    saved = dispatcher.get_current_device
    for d in devices:
        d.overloads.clear()
    dispatcher.get_current_device = lambda: _TargetDevice()
    try:
        yield
    finally:
        dispatcher.get_current_device = saved
        for d in devices:
            d.overloads.clear()


def gate_numba(ccs, f64_ccs, assembler: Assembler | None, tmp: Path, log) -> tuple[list[dict], list[str]]:
    from numba import cuda

    from gpuaug.kernels._numba_glue import cuda_kernel_entries

    rows, failures = [], []
    entries = cuda_kernel_entries()
    for cc in ccs:
        with target_device(cc):
            for module, name, kernel, entry in entries:
                for sig in entry.signatures:
                    if "float64" in sig and "float32" not in sig and len(entry.signatures) > 1 and cc not in f64_ccs:
                        continue  # a float64 variant, compiled for f64_ccs only
                    row = {"kernel": f"{module}.{name}", "op": entry.op, "threads": entry.threads,
                           "signature": sig, "cc": f"{cc[0]}.{cc[1]}"}
                    t0 = time.perf_counter()
                    try:
                        ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
                    except Exception as e:  # noqa: BLE001 - report every kernel
                        row["error"] = f"{type(e).__name__}: {e}"
                        failures.append(f"{row['kernel']} {sig} cc {row['cc']}: compile failed: {_brief(e)}")
                        rows.append(row)
                        log(f"FAIL {row['kernel']} cc {row['cc']}: {type(e).__name__}")
                        continue
                    row["compile_s"] = round(time.perf_counter() - t0, 3)
                    if assembler is not None and assembler.available():
                        try:
                            tool, out = assembler.assemble(ptx, cc, tmp)
                            row["assembler"] = tool
                            row.update(_summarise(parse_ptxas(out)))
                        except Exception as e:  # noqa: BLE001
                            row["error"] = f"{type(e).__name__}: {e}"
                            failures.append(f"{row['kernel']} {sig} cc {row['cc']}: assembly failed: {e}")
                    _check_resources(row, failures)
                    rows.append(row)
                    log(f"{row['kernel']:<44} cc {row['cc']} {row.get('registers', '-'):>4} regs "
                        f"spill {row.get('spill_stores', '-')}/{row.get('spill_loads', '-')} "
                        f"stack {row.get('stack_frame', '-')}  {row['compile_s']:.2f} s  {sig[5:60]}...")
    return rows, failures


def _brief(e: Exception) -> str:
    """The informative lines of a (Numba) compile error, on one line."""
    lines = [ln.strip() for ln in str(e).splitlines()
             if ln.strip() and not ln.startswith(("Failed in", "During:", "<source elided>"))]
    return f"{type(e).__name__}: " + " | ".join(lines[:3])


def _check_resources(row: dict, failures: list[str]) -> None:
    where = f"{row['kernel']} {row.get('signature', '')} cc {row['cc']}"
    if row.get("spill_stores") or row.get("spill_loads"):
        failures.append(f"{where}: register spill ({row['spill_stores']} bytes stores, "
                        f"{row['spill_loads']} bytes loads)")
    regs = row.get("registers")
    if regs is not None and regs * row["threads"] > REGISTERS_PER_BLOCK:
        failures.append(f"{where}: {regs} registers x {row['threads']} threads per block exceed "
                        f"{REGISTERS_PER_BLOCK}")


# ------------------------------------------------------------------------------- CUDA C sources


def _cu_specs() -> dict[str, dict]:
    specs = {}
    for module in kernel_modules():
        for source, spec in getattr(module, "CUDA_C_KERNELS", {}).items():
            specs[source] = spec
    return specs


def gate_cuda_c(ccs, tmp: Path, log) -> tuple[list[dict], list[str], dict]:
    nvcc = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")
    nvrtc = _nvrtc()
    rows, failures, tools = [], [], {"nvcc": bool(nvcc), "nvrtc": bool(nvrtc)}
    for source, spec in sorted(_cu_specs().items()):
        path = KERNELS_DIR / source
        for cc in ccs:
            arch = f"sm_{cc[0]}{cc[1]}"
            outputs = []
            if nvcc:
                t0 = time.perf_counter()
                res = subprocess.run([nvcc, "-cubin", f"-arch={arch}", "-Xptxas", "-v", *spec["options"],
                                      str(path), "-o", str(tmp / "cu.cubin")],
                                     capture_output=True, text=True, timeout=600)
                outputs.append(("nvcc", res.returncode == 0, res.stdout + res.stderr, time.perf_counter() - t0))
            if nvrtc:
                t0 = time.perf_counter()
                ok, out = _nvrtc_compile(nvrtc, path, [*spec["options"], f"-arch={arch}", "-Xptxas=-v"])
                outputs.append(("nvrtc", ok, out, time.perf_counter() - t0))
            for compiler, ok, out, secs in outputs:
                if not ok:
                    failures.append(f"{source} cc {cc[0]}.{cc[1]}: {compiler} failed:\n{out[-3000:]}")
                    rows.append({"source": source, "compiler": compiler, "cc": f"{cc[0]}.{cc[1]}", "error": out[-3000:]})
                    log(f"FAIL {source} {compiler} cc {cc[0]}.{cc[1]}")
                    continue
                funcs = parse_ptxas(out)
                for kernel in spec["kernels"]:
                    row = {"kernel": f"{source}:{kernel}", "source": source, "compiler": compiler, "op": spec["op"],
                           "threads": spec["threads"], "cc": f"{cc[0]}.{cc[1]}", "compile_s": round(secs, 3)}
                    try:
                        row.update(_summarise(funcs, kernel))
                    except RuntimeError as e:
                        row["error"] = str(e)
                        failures.append(f"{source}:{kernel} cc {row['cc']} ({compiler}): {e}")
                    _check_resources(row, failures)
                    rows.append(row)
                    log(f"{row['kernel']:<44} cc {row['cc']} {row.get('registers', '-'):>4} regs "
                        f"spill {row.get('spill_stores', '-')}/{row.get('spill_loads', '-')} "
                        f"stack {row.get('stack_frame', '-')}  {secs:.2f} s  ({compiler})")
    return rows, failures, tools


def _nvrtc_compile(nvrtc, path: Path, options: list[str]) -> tuple[bool, str]:
    err, prog = nvrtc.nvrtcCreateProgram(path.read_bytes(), path.name.encode(), 0, [], [])
    if int(err):
        return False, f"nvrtcCreateProgram: {err}"
    try:
        opts = [o.encode() for o in options]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        _, size = nvrtc.nvrtcGetProgramLogSize(prog)
        buf = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, buf)
        return int(err) == 0, buf.decode(errors="replace").rstrip("\x00 ")
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


# ------------------------------------------------------------------------------- versions, CLI


def versions(assembler: Assembler | None) -> dict:
    from importlib import metadata

    def dist(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    out = {"python": platform.python_version(), "numba": dist("numba"), "numba-cuda": dist("numba-cuda"),
           "nvidia-nvvm": dist("nvidia-nvvm"), "cuda-bindings": dist("cuda-bindings")}
    try:
        from numba.cuda.cudadrv import nvvm

        v = nvvm.NVVM()
        out["nvvm"] = ".".join(map(str, v.get_version()))
        out["nvvm_ir"] = ".".join(map(str, v.get_ir_version()))
    except Exception as e:  # noqa: BLE001
        out["nvvm"] = f"unavailable: {type(e).__name__}: {e}"
    if assembler is not None and assembler.ptxas:
        out["ptxas"] = _tool_version(assembler.ptxas)
    if assembler is not None and assembler.nvjitlink:
        out["nvjitlink"] = ".".join(map(str, assembler.nvjitlink.version()))
    nvcc = shutil.which("nvcc") or shutil.which("nvcc", path="/usr/local/cuda/bin")
    out["nvcc"] = _tool_version(nvcc) if nvcc else None
    nvrtc = _nvrtc()
    if nvrtc:
        _, major, minor = nvrtc.nvrtcVersion()
        out["nvrtc"] = f"{major}.{minor}"
    return out


def _cc(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def run(ccs, f64_ccs=None, *, require: bool = False, quiet: bool = False) -> dict:
    """Run the gate; returns the results (``ok`` False on any failure)."""
    from numba import config

    if config.ENABLE_CUDASIM:
        raise RuntimeError("the compile gate needs the real CUDA target: run it with NUMBA_ENABLE_CUDASIM=0")
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    t_start = time.perf_counter()
    f64_ccs = list(ccs) if f64_ccs is None else list(f64_ccs)
    cov = coverage()
    failures = [*cov["missing"], *cov["stale"]]
    skipped = []
    assembler = Assembler()
    if not assembler.available():
        skipped.append("PTX assembly: neither ptxas nor nvJitLink found")
    result = {"command": " ".join(["python -m gpuaug.kernels._compile_gate", *sys.argv[1:]])
              if sys.argv and sys.argv[0].endswith("_compile_gate.py") else None,
              "ccs": [f"{a}.{b}" for a, b in ccs], "f64_ccs": [f"{a}.{b}" for a, b in f64_ccs],
              "versions": versions(assembler), "host": {"machine": platform.machine(), "cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="gpuaug-gate-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        if str(result["versions"].get("nvvm", "")).startswith("unavailable"):
            skipped.append(f"Numba CUDA kernels: NVVM {result['versions']['nvvm']}")
            numba_rows = []
        else:
            numba_rows, fails = gate_numba(ccs, f64_ccs, assembler, tmp, log)
            failures += fails
        result["numba_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        cu_rows, fails, tools = gate_cuda_c(ccs, tmp, log)
        failures += fails
        result["cuda_c_s"] = round(time.perf_counter() - t0, 2)
        if not (tools["nvcc"] or tools["nvrtc"]):
            skipped.append("CUDA C sources: neither nvcc nor NVRTC found")
        elif not tools["nvcc"]:
            skipped.append("CUDA C sources: nvcc not found (NVRTC only)")
    if require and skipped:
        failures += [f"required: {s}" for s in skipped]
    result.update(ok=not failures, failures=failures, skipped=skipped, coverage=cov, numba=numba_rows,
                  cuda_c=cu_rows, total_s=round(time.perf_counter() - t_start, 2))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpuaug.kernels._compile_gate", description=__doc__.split("\n")[0])
    parser.add_argument("--cc", nargs="+", default=["9.0", "8.0"], help="compute capabilities (default 9.0 8.0)")
    parser.add_argument("--f64-cc", nargs="*", default=None,
                        help="compile the float64 variants for these only (default: every --cc)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--require", action="store_true", help="fail when NVVM, nvcc or an assembler is missing")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from numba import config

    if config.ENABLE_CUDASIM:  # numba.cuda was imported as the simulator: re-run on the real target
        env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
        argv = sys.argv[1:] if argv is None else list(argv)
        return subprocess.run([sys.executable, "-m", "gpuaug.kernels._compile_gate", *argv], env=env).returncode
    ccs = [_cc(c) for c in args.cc]
    f64 = None if args.f64_cc is None else [_cc(c) for c in args.f64_cc]
    result = run(ccs, f64, require=args.require, quiet=args.quiet)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    for s in result["skipped"]:
        print(f"SKIPPED: {s}")
    for f in result["failures"]:
        print(f"FAILED: {f}")
    n = len(result["numba"]) + len(result["cuda_c"])
    print(f"compile gate: {'OK' if result['ok'] else 'FAILED'} ({n} compiles, {result['total_s']} s)")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
