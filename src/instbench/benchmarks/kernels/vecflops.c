/*
 * instbench vecflops: double-precision multiply-add throughput of one vector extension.
 *
 * Written for instbench. The same source is compiled once per extension with the flags
 * that target it (instbench/benchmarks/cpu.py: -msse2 / -mavx2 -mfma / -mavx512f -mfma on
 * x86, the default Advanced SIMD on aarch64) and VEC_BYTES set to the register width, and
 * is run only on CPUs that offer the extension. ACC independent accumulators of GNU C
 * vector type each do acc = acc * m + c per step: with FMA that is one fused instruction
 * (2 FLOPs per lane), without it a multiply and an add (also 2 FLOPs per lane). ACC
 * chains hide the latency of the FP units, so the rate approaches the machine's
 * multiply-add throughput. m and c come from the command line, so nothing is folded at
 * compile time; m is slightly below 1 so values stay finite.
 *
 * Every OpenMP thread runs steps for ms milliseconds; FLOPs = steps x ACC x lanes x 2.
 * Usage: vecflops threads=N ms=T
 * Output: one JSON object on stdout.
 */

#define _GNU_SOURCE

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef VEC_BYTES
#define VEC_BYTES 16
#endif
#ifndef ACC
#define ACC 12
#endif
#define LANES (VEC_BYTES / 8)
#define INNER 4096

typedef double vec_t __attribute__((vector_size(VEC_BYTES)));

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
    omp_set_dynamic(0);
    double t0 = 0.0;
#pragma omp parallel num_threads((int)threads) reduction(+ : total_flops, sink)
    {
        vec_t m, c, acc[ACC];
        for (int l = 0; l < LANES; l++) {
            m[l] = mul;
            c[l] = add;
        }
        for (int a = 0; a < ACC; a++)
            for (int l = 0; l < LANES; l++) acc[a][l] = (double)(a + l + omp_get_thread_num());
#pragma omp barrier
#pragma omp single
        t0 = now_s();
        double start = now_s(), t;
        long long steps = 0;
        do {
            for (int k = 0; k < INNER; k++) {
#pragma GCC unroll 32
                for (int a = 0; a < ACC; a++) acc[a] = acc[a] * m + c;
            }
            steps += INNER;
            t = now_s();
        } while (t - start < ms / 1000.0);
        total_flops += (double)steps * ACC * LANES * 2.0;
        for (int a = 0; a < ACC; a++)
            for (int l = 0; l < LANES; l++) sink += acc[a][l];
#pragma omp barrier
#pragma omp single
        wall = now_s() - t0;
    }
    printf("{\"program\":\"instbench-vecflops\",\"kernel_version\":\"1.0.0\",\"vec_bytes\":%d,"
           "\"threads\":%ld,\"flops\":%.17g,\"seconds\":%.9g,\"gflops\":%.9g,\"sink\":%.6g}\n",
           VEC_BYTES, threads, total_flops, wall, total_flops / wall / 1e9, sink);
    return 0;
}
