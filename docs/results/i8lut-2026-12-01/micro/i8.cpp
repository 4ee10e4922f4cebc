// Prototype: int8 lookup tables (VPERMB, 4 groups of 16 entries per 64-byte
// table) summed by VPDPBUSD with the chunk multiplier as the u8 operand.
// Block = 16 rows; per chunk (32 columns, 8 groups) 64 bytes: byte 4r+j:
// low nibble = row r group j, high nibble = row r group 4+j.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/BitGemvI16.h"
#include "kernels/cpu/Gemv.h"
#include "kernels/cpu/HugePages.h"
#include "kernels/cpu/ThreadPool.h"
using namespace bimamba::kernels;
using clk = std::chrono::steady_clock;
volatile long sink;

struct I8 {
    int rows, cols, blocks, chunks;
    uint8_t* d;  // blocks * chunks * 64
};
// prepared: tables int8 [chunks*128], mult u8 [chunks], G
struct Prep {
    std::vector<int8_t> t;
    std::vector<uint8_t> m;
    float G;
};
static float LIM = 125;
static void prepare(const float* x, int cols, Prep& p) {
    const int C = (cols + 31) / 32;
    p.t.assign(C * 128, 0);
    p.m.assign(C, 0);
    std::vector<float> mx(C);
    float S = 0;
    for (int k = 0; k < C; ++k) {
        float a = 0;
        for (int g = 0; g < 8; ++g) {
            float gs = 0;
            for (int c = 32 * k + 4 * g; c < std::min(cols, 32 * k + 4 * g + 4); ++c) gs += std::fabs(x[c]);
            a = std::max(a, gs);
        }
        mx[k] = a / LIM;
        S = std::max(S, mx[k]);
    }
    S = std::max(S, 0x1p-100f);
    p.G = S / 255;
    for (int k = 0; k < C; ++k) {
        int mk = (int)std::ceil(mx[k] / p.G);
        mk = std::clamp(mk, 1, 255);
        p.m[k] = mk;
        const float inv = 1 / (p.G * mk);
        int q[32] = {};
        for (int c = 0; c < 32 && 32 * k + c < cols; ++c)
            q[c] = std::clamp((int)std::lrint(x[32 * k + c] * inv), -127, 127);
        for (int g = 0; g < 8; ++g)
            for (int i = 0; i < 16; ++i) {
                int s = 0;
                for (int j = 0; j < 4; ++j) s += (i >> j & 1) ? -q[4 * g + j] : q[4 * g + j];
                p.t[128 * k + 16 * g + i] = (int8_t)s;
            }
    }
}
static bool neg(const I8& m, int r, int c) {
    int b = r / 16, rr = r % 16, k = c / 32, g = (c % 32) / 4, j = c % 4;
    uint8_t byte = m.d[((size_t)b * m.chunks + k) * 64 + 4 * rr + g % 4];
    return ((g < 4 ? byte : byte >> 4) >> j) & 1;
}
static void ref(const I8& m, const Prep& p, float* y) {
    for (int r = 0; r < m.rows; ++r) {
        int64_t acc = 0;
        for (int k = 0; k < m.chunks; ++k) {
            int s = 0;
            for (int g = 0; g < 8; ++g) {
                int idx = 0;
                for (int j = 0; j < 4; ++j) idx |= neg(m, r, 32 * k + 4 * g + j) << j;
                s += p.t[128 * k + 16 * g + idx];
            }
            acc += (int64_t)s * p.m[k];
        }
        y[r] = (float)acc * p.G;
    }
}
template <int NB>
__attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni"))) static void kblocks(const I8& m, const Prep& p, int b,
                                                                                      float* y) {
    const __m512i m0f = _mm512_set1_epi8(0x0F);
    const __m512i sel = _mm512_set1_epi32(0x30201000);
    __m512i acc[NB];
    for (int j = 0; j < NB; ++j) acc[j] = _mm512_setzero_si512();
    const size_t bb = (size_t)m.chunks * 64;
    const uint8_t* d = m.d + b * bb;
    for (int k = 0; k < m.chunks; ++k) {
        const __m512i tlo = _mm512_loadu_si512(p.t.data() + 128 * k);
        const __m512i thi = _mm512_loadu_si512(p.t.data() + 128 * k + 64);
        const __m512i mk = _mm512_set1_epi8((char)p.m[k]);
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) {
            const uint8_t* dj = d + j * bb + 64 * k;
            _mm_prefetch((const char*)dj + 2048, NB >= 4 ? _MM_HINT_T1 : _MM_HINT_T0);
            const __m512i w = _mm512_loadu_si512(dj);
            const __m512i lo = _mm512_ternarylogic_epi32(w, m0f, sel, 0xEA);  // (A & B) | C
            const __m512i hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(w, 4), m0f, sel, 0xEA);
            acc[j] = _mm512_dpbusd_epi32(acc[j], mk, _mm512_permutexvar_epi8(lo, tlo));
            acc[j] = _mm512_dpbusd_epi32(acc[j], mk, _mm512_permutexvar_epi8(hi, thi));
        }
    }
    const __m512 g = _mm512_set1_ps(p.G);
    for (int j = 0; j < NB; ++j) _mm512_storeu_ps(y + 16 * (b + j), _mm512_mul_ps(_mm512_cvtepi32_ps(acc[j]), g));
}
template <int NB>
static void kernel(const I8& m, const Prep& p, int b0, int b1, float* y) {
    int b = b0;
    for (; b + NB <= b1; b += NB) kblocks<NB>(m, p, b, y);
    for (; b < b1; ++b) kblocks<1>(m, p, b, y);
}
static void flushc(std::vector<char>& f) {
    long acc = 0;
    for (size_t i = 0; i < f.size(); i += 64) acc += f[i];
    sink += acc;
}
int main(int argc, char** argv) {
    const int rows = argc > 1 ? atoi(argv[1]) : 1536, cols = argc > 2 ? atoi(argv[2]) : 3072;
    const int reps = argc > 3 ? atoi(argv[3]) : 20, threads = argc > 4 ? atoi(argv[4]) : 2;
    const int layers = argc > 5 ? atoi(argv[5]) : 48;
    if (argc > 6) LIM = atof(argv[6]);
    auto cx1 = CpuContext::make("auto", 1);
    auto cx = CpuContext::make("auto", threads);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    std::vector<float> x(cols), y(rows + 64), y2(rows + 64);
    for (auto& v : x) v = nd(rng);
    // i16lut matrices
    std::vector<uint8_t> signs(rows * bit_row_stride(cols));
    std::vector<I16LutMatrix> A;
    const int chunks = (cols + 31) / 32, blocks = (rows + 15) / 16;
    const size_t i8b = (size_t)blocks * chunks * 64;
    std::vector<I8> B;
    for (int l = 0; l < layers; ++l) {
        for (auto& b : signs) b = rng();
        A.push_back(repack_i16lut(signs.data(), rows, cols));
    }
    const size_t ab = A[0].data.size();
    HugeBuffer HA(layers * ab), HB(layers * i8b);
    for (int l = 0; l < layers; ++l) {
        memcpy(HA.data() + l * ab, A[l].data.data(), ab);
        A[l].place(HA.data() + l * ab);
        uint8_t* d = HB.data() + l * i8b;
        for (size_t i = 0; i < i8b; ++i) d[i] = rng();
        B.push_back({rows, cols, blocks, chunks, d});
    }
    // correctness
    Prep p;
    prepare(x.data(), cols, p);
    ref(B[0], p, y.data());
    kernel<4>(B[0], p, 0, blocks, y2.data());
    double md = 0;
    for (int r = 0; r < rows; ++r) md = std::max(md, (double)std::fabs(y[r] - y2[r]));
    printf("kernel vs ref max diff %g\n", md);
    // error vs float (i16lut and i8) against exact double product using A[0]'s signs? use B[0] signs
    {
        std::vector<double> ex(rows);
        double e8 = 0, n2 = 0;
        for (int r = 0; r < rows; ++r) {
            double s = 0;
            for (int c = 0; c < cols; ++c) s += neg(B[0], r, c) ? -x[c] : x[c];
            e8 += (s - y[r]) * (s - y[r]);
            n2 += s * s;
        }
        printf("i8 relative rms error %.5f\n", std::sqrt(e8 / n2));
        std::vector<float> yi(rows), yr(rows);
        std::vector<uint8_t> scr(i16lut_scratch_bytes(cols));
        bitgemv_i16lut(cx1, A[0], x.data(), yi.data(), scr.data());
        double ei = 0, ni = 0;
        for (int r = 0; r < rows; ++r) {
            double s = 0;
            for (int c = 0; c < cols; ++c) s += A[0].neg(r, c) ? -x[c] : x[c];
            ei += (s - yi[r]) * (s - yi[r]);
            ni += s * s;
        }
        printf("i16 relative rms error %.7f\n", std::sqrt(ei / ni));
    }
    std::vector<uint8_t> scratch(i16lut_scratch_bytes(cols));
    i16lut_prepare(cx1, x.data(), cols, scratch.data());
    // in cache, one thread, matrix 0
    for (int t = 0; t < 3; ++t) {
        auto t0 = clk::now();
        for (int i = 0; i < reps * 10; ++i)
            bitgemv_i16lut_blocks_avx512(A[0], scratch.data(), 0, A[0].blocks, y.data());
        auto t1 = clk::now();
        for (int i = 0; i < reps * 10; ++i) kernel<4>(B[0], p, 0, blocks, y2.data());
        auto t2 = clk::now();
        for (int i = 0; i < reps * 10; ++i) kernel<1>(B[0], p, 0, blocks, y2.data());
        auto t3 = clk::now();
        auto us = [&](auto a, auto b) {
            return std::chrono::duration<double, std::micro>(b - a).count() / (reps * 10);
        };
        printf("in cache 1 thread: i16 %.2f us, i8 NB4 %.2f us, i8 NB1 %.2f us\n", us(t0, t1), us(t1, t2), us(t2, t3));
    }
    // DRAM, threads
    std::vector<char> fl(256 << 20, 1);
    std::vector<double> ta, tb;
    for (int r = 0; r < reps; ++r) {
        flushc(fl);
        auto t0 = clk::now();
        for (int l = 0; l < layers; ++l) bitgemv_i16lut(cx, A[l], x.data(), y.data(), scratch.data());
        auto t1 = clk::now();
        flushc(fl);
        auto t2 = clk::now();
        for (int l = 0; l < layers; ++l) {
            prepare(x.data(), cols, p);  // scalar, not timed fairly: subtract below
        }
        auto t3 = clk::now();
        for (int l = 0; l < layers; ++l)
            cx.threads().parallel_for(blocks, 4, [&](int a, int b) { kernel<4>(B[l], p, a, b, y2.data()); });
        auto t4 = clk::now();
        ta.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / layers);
        tb.push_back(std::chrono::duration<double, std::micro>(t4 - t3).count() / layers);
    }
    std::vector<double> ra;
    for (int r = 0; r < reps; ++r) ra.push_back(tb[r] / ta[r]);
    std::sort(ta.begin(), ta.end());
    std::sort(tb.begin(), tb.end());
    std::sort(ra.begin(), ra.end());
    printf(
        "DRAM %d threads us/layer: i16 med %.2f, i8 (kernel only) med %.2f, ratio med %.3f q1 %.3f q3 %.3f; GB/s i16 %.1f i8 %.1f\n",
        threads, ta[reps / 2], tb[reps / 2], ra[reps / 2], ra[reps / 4], ra[3 * reps / 4], ab / ta[reps / 2] / 1e3,
        i8b / tb[reps / 2] / 1e3);
}
