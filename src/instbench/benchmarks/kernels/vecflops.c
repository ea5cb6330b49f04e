/*
 * instbench vecflops: double-precision multiply-add throughput of one vector extension.
 *
 * Written for instbench. The same source is compiled once per extension with the flags
 * that target it (instbench/benchmarks/cpu.py: -msse2 / -mavx2 -mfma / -mavx512f -mfma on
 * x86, the default Advanced SIMD on aarch64, -march=armv8-a+sve -DVEC_SVE=1 for SVE) and
 * VEC_BYTES set to the register width, and is run only on CPUs that offer the extension.
 * ACC independent accumulators each do acc = acc * m + c per step: with FMA that is one
 * fused instruction (2 FLOPs per lane), without it a multiply and an add (also 2 FLOPs
 * per lane). ACC chains hide the latency of the FP units, so the rate approaches the
 * machine's multiply-add throughput. m and c come from the command line, so nothing is
 * folded at compile time; m is slightly below 1 so values stay finite.
 *
 * Fixed-width extensions use GNU C vector types of VEC_BYTES. SVE is vector-length
 * agnostic: its register width is only known at run time (256 bits on Graviton3, 128 on
 * Graviton4), and SVE types are sizeless, so they can be neither GNU vectors nor array
 * elements; the SVE path uses the ACLE intrinsics (arm_sve.h) on ACC named registers,
 * svmla with an all-true predicate (one FMLA each), and counts lanes with svcntd().
 *
 * Check: after the timed loop every lane of every accumulator must equal the closed form
 * of its recurrence, F + m^steps (a0 - F) with F = c / (1 - m), within 1e-9 relative
 * (the recurrence contracts towards F, so rounding does not accumulate). It proves every
 * lane was computed (a lane skipped by a wrong predicate or width keeps a0), which
 * matters for SVE, whose width the kernel does not choose.
 *
 * Every OpenMP thread runs steps for ms milliseconds; FLOPs = steps x ACC x lanes x 2.
 * Usage: vecflops threads=N ms=T
 * Output: one JSON object on stdout.
 */

#define _GNU_SOURCE

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef VEC_SVE
#define VEC_SVE 0
#endif
#if VEC_SVE
#include <arm_sve.h>
/* 16 chains: Neoverse V2 has 4 FMA pipes of latency 4 (16 in flight); V1 needs 8. */
#undef ACC
#define ACC 16
#define LANES ((int)svcntd())
#define VEC_BYTES_RUN ((int)svcntb())
#else
#ifndef VEC_BYTES
#define VEC_BYTES 16
#endif
#ifndef ACC
#define ACC 12
#endif
#define LANES (VEC_BYTES / 8)
#define VEC_BYTES_RUN VEC_BYTES
typedef double vec_t __attribute__((vector_size(VEC_BYTES)));
#endif
#define INNER 4096

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long threads = 1;
    double ms = 200.0;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "threads=", 8))
            threads = strtol(argv[i] + 8, NULL, 10);
        else if (!strncmp(argv[i], "ms=", 3))
            ms = strtod(argv[i] + 3, NULL);
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (threads < 1 || threads > 65536 || !(ms >= 1.0 && ms <= 3600000.0)) {
        fprintf(stderr, "usage: vecflops threads=N ms=T\n");
        return 2;
    }
    double mul = 1.0 - 1.0 / (double)(argc + 1000000), add = 1.0 / (double)(argc + 1000);
    double total_flops = 0.0, sink = 0.0, wall = 0.0;
    long checked = 0, bad = 0;
    omp_set_dynamic(0);
    double t0 = 0.0;
#pragma omp parallel num_threads((int)threads) reduction(+ : total_flops, sink, checked, bad)
    {
        double start = 0.0, t, a0[ACC][64], fin[ACC][64];
        long long steps = 0;
        int lanes = LANES, thread = omp_get_thread_num();
        for (int a = 0; a < ACC; a++)
            for (int l = 0; l < lanes && l < 64; l++) a0[a][l] = (double)(a + l + thread);
#if VEC_SVE
        svbool_t pg = svptrue_b64();
        svfloat64_t m = svdup_f64(mul), c = svdup_f64(add);
        /* lane l of accumulator a starts at a + l + thread, as in the fixed-width path */
        svfloat64_t base = svadd_n_f64_x(pg, svcvt_f64_s64_x(pg, svindex_s64(0, 1)),
                                          (double)thread);
#define SVE_INIT(i) svfloat64_t r##i = svadd_n_f64_x(pg, base, (double)(i));
#define SVE_STEP(i) r##i = svmla_f64_x(pg, c, r##i, m);
#define SVE_SAVE(i) svst1_f64(pg, fin[i], r##i);
#define SVE_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
    X(12) X(13) X(14) X(15)
        SVE_ALL(SVE_INIT)
#pragma omp barrier
#pragma omp single
        t0 = now_s();
        start = now_s();
        do {
            for (int k = 0; k < INNER; k++) {
                SVE_ALL(SVE_STEP)
            }
            steps += INNER;
            t = now_s();
        } while (t - start < ms / 1000.0);
        if (lanes <= 64) {
            SVE_ALL(SVE_SAVE)
        }
#else
        vec_t m, c, acc[ACC];
        for (int l = 0; l < LANES; l++) {
            m[l] = mul;
            c[l] = add;
        }
        for (int a = 0; a < ACC; a++)
            for (int l = 0; l < LANES; l++) acc[a][l] = a0[a][l];
#pragma omp barrier
#pragma omp single
        t0 = now_s();
        start = now_s();
        do {
            for (int k = 0; k < INNER; k++) {
#pragma GCC unroll 32
                for (int a = 0; a < ACC; a++) acc[a] = acc[a] * m + c;
            }
            steps += INNER;
            t = now_s();
        } while (t - start < ms / 1000.0);
        for (int a = 0; a < ACC; a++)
            for (int l = 0; l < LANES; l++) fin[a][l] = acc[a][l];
#endif
        total_flops += (double)steps * ACC * lanes * 2.0;
        /* closed form of the recurrence (see the header) for every lane */
        double fixed = add / (1.0 - mul), decay = pow(mul, (double)steps);
        if (lanes > 64) {
            bad += 1;
        } else {
            for (int a = 0; a < ACC; a++)
                for (int l = 0; l < lanes; l++) {
                    double want = fixed + decay * (a0[a][l] - fixed);
                    sink += fin[a][l];
                    checked += 1;
                    if (!(fabs(fin[a][l] - want) <= 1e-9 * fabs(want))) bad += 1;
                }
        }
#pragma omp barrier
#pragma omp single
        wall = now_s() - t0;
    }
    printf("{\"program\":\"instbench-vecflops\",\"kernel_version\":\"1.0.0\",\"vec_bytes\":%d,"
           "\"threads\":%ld,\"flops\":%.17g,\"seconds\":%.9g,\"gflops\":%.9g,\"sink\":%.6g,"
           "\"lanes_checked\":%ld,\"check_ok\":%s}\n",
           VEC_BYTES_RUN, threads, total_flops, wall, total_flops / wall / 1e9, sink, checked,
           (bad == 0 && checked > 0) ? "true" : "false");
    return 0;
}
