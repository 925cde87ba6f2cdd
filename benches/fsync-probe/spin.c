/* A spinner for core-cost.sh: `spin SECONDS` counts rounds of 100,000 additions
 * until SECONDS have passed, and prints the count: the CPU it got. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: spin SECONDS\n");
        return 2;
    }
    double secs = atof(argv[1]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned long n = 0;
    volatile unsigned long x = 0;
    for (;;) {
        for (int i = 0; i < 100000; i++) x += i;
        n++;
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 > secs) break;
    }
    printf("%lu\n", n);
    return 0;
}
