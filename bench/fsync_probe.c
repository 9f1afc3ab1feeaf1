/*
 * fsync_probe.c - how many small durable writes per second the filesystem takes: the ceiling
 * for commits that each wait for their own fsync, and the baseline against which group commit
 * is judged.
 *
 * usage: fsync_probe FILE [SECONDS]
 *
 * Overwrites 4 KiB pages of a preallocated 1 MiB FILE in turn, each followed by fdatasync()
 * (what SQLite does to its WAL on commit with synchronous=full), for SECONDS (default 1), then
 * prints "fdatasync_per_s=N mean_ms=M" and removes FILE.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fsync_probe FILE [SECONDS]\n");
        return 2;
    }
    const char *path = argv[1];
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    enum { PAGE = 4096, PAGES = 256 };
    static char page[PAGE];
    memset(page, 'x', sizeof(page));
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    for (int i = 0; i < PAGES; i++) {
        if (write(fd, page, PAGE) != PAGE) {
            perror("write");
            return 1;
        }
    }
    if (fsync(fd) != 0) {
        perror("fsync");
        return 1;
    }
    long n = 0;
    double start = now(), elapsed;
    do {
        page[0] = (char)('a' + n % 26);
        if (pwrite(fd, page, PAGE, (off_t)(n % PAGES) * PAGE) != PAGE || fdatasync(fd) != 0) {
            perror("pwrite/fdatasync");
            return 1;
        }
        n++;
        elapsed = now() - start;
    } while (elapsed < seconds);
    close(fd);
    unlink(path);
    printf("fdatasync_per_s=%.0f mean_ms=%.3f\n", (double)n / elapsed, elapsed / (double)n * 1e3);
    return 0;
}
