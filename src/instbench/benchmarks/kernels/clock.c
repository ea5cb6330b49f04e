/*
 * instbench clock: the core clock, measured as the rate of a dependent chain of integer adds.
 *
 * Written for instbench, for CPUs whose OS reports no frequency (Graviton: no "cpu MHz" in
 * /proc/cpuinfo and no cpufreq), where the theoretical peak of LINPACK needs one. An
 * integer add whose input is the previous add's result retires one per cycle on the cores
 * instbench targets (latency 1 cycle: Intel since P6, AMD Zen 1-5, Arm Neoverse N1/V1/V2;
 * see the vendors' software optimisation guides), so adds per second = cycles per second.
 *
 * The chain: x += y, then an empty asm statement that tells the compiler x may have
 * changed (`asm("" : "+r"(x))`, no instruction emitted, not volatile). That keeps the
 * compiler from folding the adds into one multiply-add (x += CHAIN * y) while leaving
 * exactly one add instruction per step, each depending on the one before; the loop
 * counter and branch run beside the chain on other ports. y comes from the command line
 * so nothing is constant. `objdump -d` of the binary shows CHAIN consecutive
 * `add x, x, y` (Arm) / `add %rY, %rX` (x86) on the same register.
 *
 * Each trial runs whole blocks of CHAIN adds until ms milliseconds have passed and
 * reports adds / seconds; the best of `trials` is the clock (a trial can only be slowed
 * down: by interrupts, a descheduled vCPU, a frequency ramp-up, never sped up).
 * Usage: clock ms=T trials=N
 * Output: one JSON object on stdout.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IB_KERNEL_VERSION "1.0.0"
#define CHAIN 1000
#define MAX_TRIALS 64

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define STEP                  \
    x += y;                   \
    __asm__("" : "+r"(x));
#define STEP10 STEP STEP STEP STEP STEP STEP STEP STEP STEP STEP
#define STEP100 STEP10 STEP10 STEP10 STEP10 STEP10 STEP10 STEP10 STEP10 STEP10 STEP10
#define STEP1000 STEP100 STEP100 STEP100 STEP100 STEP100 STEP100 STEP100 STEP100 STEP100 STEP100

/* One trial: blocks of CHAIN dependent adds for at least `seconds`; returns adds/s. */
static double trial(unsigned long y, double seconds, unsigned long *out) {
    unsigned long x = *out;
    long long blocks = 0;
    double start = now_s(), t;
    do {
        for (int k = 0; k < 100; k++) {
            STEP1000
        }
        blocks += 100;
        t = now_s();
    } while (t - start < seconds);
    *out = x;
    return (double)blocks * CHAIN / (t - start);
}

int main(int argc, char **argv) {
    double ms = 20.0;
    long trials = 5;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "ms=", 3))
            ms = strtod(argv[i] + 3, NULL);
        else if (!strncmp(argv[i], "trials=", 7))
            trials = strtol(argv[i] + 7, NULL, 10);
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (trials < 1 || trials > MAX_TRIALS || !(ms >= 1.0 && ms <= 10000.0)) {
        fprintf(stderr, "usage: clock ms=T trials=N (N <= %d)\n", MAX_TRIALS);
        return 2;
    }
    unsigned long x = (unsigned long)argc, y = (unsigned long)argc + 2;
    double rates[MAX_TRIALS], best = 0.0;
    for (long i = 0; i < trials; i++) {
        rates[i] = trial(y, ms / 1000.0, &x);
        if (rates[i] > best) best = rates[i];
    }
    printf("{\"program\":\"instbench-clock\",\"kernel_version\":\"%s\",\"chain\":%d,"
           "\"ms\":%g,\"adds_per_s\":[",
           IB_KERNEL_VERSION, CHAIN, ms);
    for (long i = 0; i < trials; i++) printf("%s%.9g", i ? "," : "", rates[i]);
    printf("],\"best_mhz\":%.6f,\"sink\":%lu}\n", best / 1e6, x);
    return 0;
}
