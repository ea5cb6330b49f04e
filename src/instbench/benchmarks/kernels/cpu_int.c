/*
 * instbench-int: an integer CPU kernel written for instbench. It is NOT CoreMark and its
 * scores are not comparable with CoreMark scores; it is published as "instbench-int".
 *
 * One iteration does four kinds of integer work on small, cache-resident data, the mix
 * that general-purpose code is made of:
 *   - list processing: a 256-node singly linked list laid out in a seeded random order is
 *     walked (sum), reversed in place, walked again, and searched (pointer chasing and
 *     unpredictable branches);
 *   - matrix: a 16x16 int32 matrix product with a seeded operand, then a masked reduction
 *     (multiply-accumulate throughput);
 *   - state machine: a 512-byte seeded buffer of digits, signs, dots, 'e' and separators
 *     is scanned by a number-format recogniser (integer/decimal/exponent/invalid), counting
 *     transitions (data-dependent branches);
 *   - CRC-32 (bitwise, reflected 0xEDB88320) over the results of the above.
 * The iteration's seed is its index mod 256, so the data change from one iteration to the
 * next but the work of iterations 0..255 is fixed: their combined CRC is the validation
 * checksum, computed by every thread before timing and compared by instbench with the
 * expected value (a wrong checksum means a miscompiled kernel or a faulty machine).
 *
 * Timing: every thread (OpenMP) runs iterations until ms milliseconds have passed (the
 * clock is read every 16 iterations); score = iterations per second summed over threads.
 *
 * Usage: cpu_int threads=N ms=T
 * Output: one JSON object on stdout. Exit 2 on bad arguments.
 */

#define _GNU_SOURCE

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IB_KERNEL_VERSION "1.0.0"
#define LIST_N 256
#define MAT_N 16
#define SM_N 512
#define VALIDATION_ITERATIONS 256

static uint32_t crc32_update(uint32_t crc, uint32_t value) {
    crc = ~crc;
    for (int byte = 0; byte < 4; byte++) {
        crc ^= (value >> (8 * byte)) & 0xFFu;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint32_t lcg(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

typedef struct {
    int32_t next[LIST_N];
    int32_t value[LIST_N];
    int32_t ma[MAT_N * MAT_N];
    int32_t mb[MAT_N * MAT_N];
    int32_t mc[MAT_N * MAT_N];
    char text[SM_N];
} work_t;

static uint32_t list_work(work_t *w, uint32_t seed) {
    uint32_t st = seed * 2654435761u + 1u;
    int32_t order[LIST_N];
    for (int i = 0; i < LIST_N; i++) order[i] = i;
    for (int i = LIST_N - 1; i > 0; i--) {
        int j = (int)(lcg(&st) % (uint32_t)(i + 1));
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < LIST_N; i++) {
        w->next[order[i]] = i + 1 < LIST_N ? order[i + 1] : -1;
        w->value[order[i]] = (int32_t)(lcg(&st) & 0xFFFF) - 0x8000;
    }
    int32_t head = order[0];
    uint32_t sum = 0;
    for (int32_t p = head; p >= 0; p = w->next[p]) sum = sum * 31u + (uint32_t)w->value[p];
    int32_t prev = -1, cur = head;
    while (cur >= 0) {
        int32_t nx = w->next[cur];
        w->next[cur] = prev;
        prev = cur;
        cur = nx;
    }
    head = prev;
    uint32_t sum2 = 0;
    int32_t found = -1, target = (int32_t)(seed & 0x7FFF) - 0x4000;
    for (int32_t p = head; p >= 0; p = w->next[p]) {
        sum2 = (sum2 ^ (uint32_t)w->value[p]) * 16777619u;
        if (found < 0 && w->value[p] > target) found = p;
    }
    return sum ^ (sum2 << 1) ^ (uint32_t)found;
}

static uint32_t matrix_work(work_t *w, uint32_t seed) {
    uint32_t st = seed ^ 0xA5A5A5A5u;
    for (int i = 0; i < MAT_N * MAT_N; i++) {
        w->ma[i] = (int32_t)(lcg(&st) & 0x3FF) - 0x200;
        w->mb[i] = (int32_t)(lcg(&st) & 0x3FF) - 0x200;
    }
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            int32_t acc = 0;
            for (int k = 0; k < MAT_N; k++) acc += w->ma[i * MAT_N + k] * w->mb[k * MAT_N + j];
            w->mc[i * MAT_N + j] = acc + (int32_t)seed;
        }
    uint32_t r = 0;
    for (int i = 0; i < MAT_N * MAT_N; i++) {
        int32_t v = w->mc[i];
        r += (v > 0 ? (uint32_t)v & 0xFFFu : (uint32_t)(-v) >> 2) ^ (uint32_t)i;
    }
    return r;
}

enum { S_START, S_INT, S_SIGN, S_DOT, S_FRAC, S_EXP, S_EXPSIGN, S_EXPINT, S_BAD, S_COUNT };

static uint32_t state_work(work_t *w, uint32_t seed) {
    static const char alphabet[] = "0123456789+-.e,,";
    uint32_t st = seed * 7919u + 17u;
    for (int i = 0; i < SM_N; i++) w->text[i] = alphabet[lcg(&st) & 15u];
    uint32_t counts[S_COUNT] = {0};
    int s = S_START;
    for (int i = 0; i < SM_N; i++) {
        char c = w->text[i];
        int digit = c >= '0' && c <= '9';
        if (c == ',') {
            counts[s]++;
            s = S_START;
            continue;
        }
        switch (s) {
        case S_START:
            s = digit ? S_INT : (c == '+' || c == '-') ? S_SIGN : c == '.' ? S_DOT : S_BAD;
            break;
        case S_SIGN:
            s = digit ? S_INT : c == '.' ? S_DOT : S_BAD;
            break;
        case S_INT:
            s = digit ? S_INT : c == '.' ? S_FRAC : c == 'e' ? S_EXP : S_BAD;
            break;
        case S_DOT:
            s = digit ? S_FRAC : S_BAD;
            break;
        case S_FRAC:
            s = digit ? S_FRAC : c == 'e' ? S_EXP : S_BAD;
            break;
        case S_EXP:
            s = digit ? S_EXPINT : (c == '+' || c == '-') ? S_EXPSIGN : S_BAD;
            break;
        case S_EXPSIGN:
        case S_EXPINT:
            s = digit ? S_EXPINT : S_BAD;
            break;
        default:
            break;
        }
    }
    counts[s]++;
    uint32_t r = 0;
    for (int k = 0; k < S_COUNT; k++) r = r * 131u + counts[k];
    return r;
}

static uint32_t iteration(work_t *w, uint32_t index) {
    uint32_t seed = index & 0xFFu;
    uint32_t crc = 0;
    crc = crc32_update(crc, list_work(w, seed));
    crc = crc32_update(crc, matrix_work(w, seed));
    crc = crc32_update(crc, state_work(w, seed));
    return crc;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long threads = 1;
    double ms = 1000.0;
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
        fprintf(stderr, "usage: cpu_int threads=N ms=T\n");
        return 2;
    }
    int nt = (int)threads;
    uint64_t *iters = calloc((size_t)nt, sizeof(uint64_t));
    uint32_t *checks = calloc((size_t)nt, sizeof(uint32_t));
    uint32_t *sinks = calloc((size_t)nt, sizeof(uint32_t));
    double *secs = calloc((size_t)nt, sizeof(double));
    if (!iters || !checks || !sinks || !secs) return 3;
    double wall0 = 0.0, wall1 = 0.0;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(nt)
    {
        int id = omp_get_thread_num();
        work_t *w = aligned_alloc(64, (sizeof(work_t) + 63) / 64 * 64);
        uint32_t check = 0;
        for (uint32_t i = 0; i < VALIDATION_ITERATIONS; i++)
            check = crc32_update(check, iteration(w, i));
        checks[id] = check;
#pragma omp barrier
#pragma omp single
        wall0 = now_s();
        double start = now_s(), limit = ms / 1000.0, t = start;
        uint64_t n = 0;
        uint32_t sink = 0;
        for (;;) {
            for (int k = 0; k < 16; k++) sink ^= iteration(w, (uint32_t)(n + (uint64_t)k));
            n += 16;
            t = now_s();
            if (t - start >= limit) break;
        }
        iters[id] = n;
        secs[id] = t - start;
        sinks[id] = sink;
        free(w);
#pragma omp barrier
#pragma omp single
        wall1 = now_s();
    }
    double score = 0.0;
    uint32_t sink = 0;
    printf("{\"program\":\"instbench-int\",\"kernel_version\":\"%s\",\"threads\":%d,"
           "\"validation_iterations\":%d,\"checksums\":[",
           IB_KERNEL_VERSION, nt, VALIDATION_ITERATIONS);
    for (int i = 0; i < nt; i++) printf("%s%u", i ? "," : "", checks[i]);
    printf("],\"iterations\":[");
    for (int i = 0; i < nt; i++) printf("%s%llu", i ? "," : "", (unsigned long long)iters[i]);
    printf("],\"seconds\":[");
    for (int i = 0; i < nt; i++) {
        printf("%s%.9g", i ? "," : "", secs[i]);
        score += (double)iters[i] / secs[i];
        sink ^= sinks[i];
    }
    printf("],\"wall_s\":%.9g,\"score\":%.9g,\"sink\":%u}\n", wall1 - wall0, score, sink);
    return 0;
}
