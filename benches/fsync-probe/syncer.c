/* Durable writes at a steady rate, for core-cost.sh: `syncer SECONDS MODE RATE FILE`,
 * MODE 0: a 300-byte pwrite + fdatasync (herald's journal), MODE 1: a 4 KiB
 * pwrite on an O_DIRECT + O_DSYNC file. Prints how many it made. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: syncer SECONDS MODE RATE FILE\n");
        return 2;
    }
    double secs = atof(argv[1]);
    int direct = atoi(argv[2]);
    int rate = atoi(argv[3]);
    int fd = open(argv[4], O_RDWR | O_CREAT | (direct ? O_DIRECT | O_DSYNC : 0), 0600);
    if (fd < 0) {
        perror(argv[4]);
        return 1;
    }
    char *buf;
    if (posix_memalign((void **)&buf, 4096, 1 << 20)) return 1;
    memset(buf, 'x', 1 << 20);
    /* Blocks written and synced first: no sync has to change the file's size. */
    for (int i = 0; i < 4; i++)
        if (pwrite(fd, buf, 1 << 20, (off_t)i << 20) < 0) return 1;
    fsync(fd);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned long n = 0;
    for (;;) {
        off_t off = (off_t)(n * 4096) % (4 << 20);
        if (direct) {
            if (pwrite(fd, buf, 4096, off) < 0) return 1;
        } else {
            if (pwrite(fd, buf, 300, off) < 0 || fdatasync(fd) < 0) return 1;
        }
        n++;
        if (rate) usleep(1000000 / rate);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 > secs) break;
    }
    printf("%lu\n", n);
    unlink(argv[4]);
    return 0;
}
