// Windowed-sinc resampler at arbitrary positions (CUDA C twin of gpuaug/kernels/warp_sinc.py).
//
// Contract: the module docstring of gpuaug.functional.resample (function `warp`). For clip b of
// valid length L, output sample j < new_lengths[b] at input position p = pos[b, j] with cutoff
// f = fc[b, j] (fraction of the input Nyquist frequency):
//     u_i  = (i - p) * f
//     k(u) = sinc(u) * cos(pi u / (2 Z))^2 for |u| < Z, else 0      (Z = zeros)
//     y[j] = sum_{0 <= i < L} x[i] k(u_i) / sum_{all i} k(u_i)
// One thread per output sample (clip, channel, j); weights in double, computed directly per tap
// exactly as the torch path does (sin(pi u) reduced around the nearest integer, so an integer
// position with f = 1 is an exact unit impulse). Padding (j >= new_lengths[b]) is written as 0.
// Layout: x (B, C, T_in), out (B, C, T_out) contiguous; pos, fc (B, T_out) double;
// lengths, new_lengths (B,) int64.
//
// Loaded by gpuaug.kernels.warp_sinc through cupy.RawModule (kernels warp_sinc_f32 / _f64).
// warp_point is __host__ __device__ so that the tests can check the math on a CPU.

#ifdef __CUDACC__
#define GPUAUG_HD __host__ __device__
#else
#define GPUAUG_HD
#endif

#ifndef __CUDACC_RTC__  // NVRTC (CuPy) has the math functions built in
#include <math.h>
#endif

template <typename T>
GPUAUG_HD double warp_point(const T* row, long long L, double p, double f, int zeros) {
    const double pi = 3.141592653589793;
    const long long h = (long long)ceil(zeros / f);
    if (p < -(h + 1.0) || p > L + h + 1.0) return 0.0;  // every tap outside the clip
    const long long centre = (long long)floor(p);
    double num = 0.0, den = 0.0;
    for (long long i = centre - h; i <= centre + h; ++i) {
        const double u = ((double)i - p) * f;
        double w;
        if (u == 0.0) {
            w = 1.0;
        } else if (fabs(u) < zeros) {
            const double n = rint(u);
            double s = sin(pi * (u - n));  // sin(pi u) = (-1)^n sin(pi (u - n))
            if (fmod(n, 2.0) != 0.0) s = -s;
            const double v = u * pi;
            w = s / v * (0.5 + 0.5 * cos(v / zeros));
        } else {
            w = 0.0;
        }
        den += w;
        if (i >= 0 && i < L) num += w * (double)row[i];
    }
    return num / den;
}

#ifdef __CUDACC__
template <typename T>
__device__ void warp_sinc(const T* x, const long long* lengths, const double* pos, const double* fc,
                          const long long* new_lengths, T* out, long long B, long long C, long long T_in,
                          long long T_out, int zeros) {
    const long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= B * C * T_out) return;
    const long long j = q % T_out;
    const long long bc = q / T_out;  // b * C + c
    const long long b = bc / C;
    if (j >= new_lengths[b]) {
        out[q] = (T)0;
        return;
    }
    out[q] = (T)warp_point(x + bc * T_in, lengths[b], pos[b * T_out + j], fc[b * T_out + j], zeros);
}

extern "C" __global__ void warp_sinc_f32(const float* x, const long long* lengths, const double* pos,
                                         const double* fc, const long long* new_lengths, float* out,
                                         long long B, long long C, long long T_in, long long T_out, int zeros) {
    warp_sinc<float>(x, lengths, pos, fc, new_lengths, out, B, C, T_in, T_out, zeros);
}

extern "C" __global__ void warp_sinc_f64(const double* x, const long long* lengths, const double* pos,
                                         const double* fc, const long long* new_lengths, double* out,
                                         long long B, long long C, long long T_in, long long T_out, int zeros) {
    warp_sinc<double>(x, lengths, pos, fc, new_lengths, out, B, C, T_in, T_out, zeros);
}
#endif
