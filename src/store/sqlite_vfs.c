/*
 * sqlite_vfs.c - the SQLite driver's file layer: SQLite's own (unix) files, except that a
 * commit's frames reach the write-ahead log in a few writes rather than two per page.
 *
 * SQLite appends a commit to the WAL frame by frame, each frame in two writes (its 24-byte
 * header, then the page), so a commit that changed 200 pages costs 400 write system calls on
 * the writer's thread. Here the writes that extend the WAL collect in memory while they follow
 * one another, and go to the file together when the commit's last frame is complete (the
 * frame whose header carries the database's size after the commit: the WAL format marks a
 * commit that way), that is before SQLite publishes the commit to readers in the WAL index.
 * A write over what the WAL already holds (a page written again in the same transaction after
 * SQLite spilled it, the checksums it then rewrites after the commit frame) goes to the file
 * at once, or into what has collected when it falls there. Anything else done with the file
 * first writes what has collected: a read (SQLite reads back frames it spilled), a sync, a
 * truncation, a size, a file control and the close. So wherever SQLite or another connection
 * looks at the file, and whenever a commit has returned, the file holds exactly what SQLite
 * wrote; only the number of calls changes. The database file, its shared memory and the
 * journals are SQLite's own, untouched.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "store/sqlite_int.h"

#define WAL_HEADER   32                 /* at the start of a WAL, written when it starts over */
#define FRAME_HEADER 24                 /* a frame's header, before its page */
#define MAX_PENDING  (16 * 1024 * 1024) /* what collects is written beyond this */
#define WRITE_MAX    (31 * 4096)        /* SQLite's unix files write less than 128 KiB a call */

typedef struct {
    sqlite3_file base;  /* pMethods: wal_methods, or forwarding ones for other files */
    sqlite3_file *real; /* SQLite's own file, in the memory after this struct */
    /* a WAL file: the writes collected, for offset .. offset + len */
    char *pending;
    size_t len, cap;
    sqlite3_int64 offset;
    sqlite3_int64 end;     /* the end of what SQLite has written (collected or not); -1: unknown */
    bool commit_page_next; /* the last write was a commit frame's header */
} vfs_file_t;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs vfs;
static sqlite3_io_methods wal_methods;
static sqlite3_io_methods forward[4]; /* by SQLite's io_methods version */

#define REAL(f) (((vfs_file_t *)(f))->real)

static int flush(vfs_file_t *f)
{
    int rc = SQLITE_OK;
    for (size_t done = 0; done < f->len && rc == SQLITE_OK; done += WRITE_MAX) {
        size_t n = f->len - done < WRITE_MAX ? f->len - done : WRITE_MAX;
        rc = f->real->pMethods->xWrite(f->real, f->pending + done, (int)n,
                                       f->offset + (sqlite3_int64)done);
    }
    f->len = 0;
    return rc;
}

static int wal_write(sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset)
{
    vfs_file_t *f = (vfs_file_t *)file;
    size_t n = (size_t)amount;
    int rc;
    if (offset == 0 && n == WAL_HEADER) {
        rc = flush(f); /* the WAL starts over: what follows extends it again */
        if (rc != SQLITE_OK)
            return rc;
        f->end = 0;
    } else if (f->end < 0) {
        rc = f->real->pMethods->xFileSize(f->real, &f->end);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (offset < f->end) {
        /* over what the WAL holds: into what has collected, or to the file at once */
        if (f->len && offset >= f->offset && offset + amount <= f->offset + (sqlite3_int64)f->len) {
            memcpy(f->pending + (offset - f->offset), data, n);
            return SQLITE_OK;
        }
        rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
        if (offset + amount > f->end)
            f->end = offset + amount;
        return f->real->pMethods->xWrite(f->real, data, amount, offset);
    }
    if (f->len && (offset != f->offset + (sqlite3_int64)f->len || f->len + n > MAX_PENDING)) {
        rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    f->end = offset + amount;
    if (n > MAX_PENDING)
        return f->real->pMethods->xWrite(f->real, data, amount, offset);
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : 256 * 1024;
        while (cap < f->len + n)
            cap *= 2;
        f->pending = xrealloc(f->pending, cap);
        f->cap = cap;
    }
    if (!f->len)
        f->offset = offset;
    memcpy(f->pending + f->len, data, n);
    f->len += n;
    if (f->commit_page_next) {
        f->commit_page_next = false;
        return flush(f); /* the commit's frames are complete */
    }
    /* a frame header whose second field (the database's size in pages after the commit) is
       not zero begins a commit's last frame */
    const unsigned char *h = data;
    f->commit_page_next = n == FRAME_HEADER && (h[4] | h[5] | h[6] | h[7]) != 0;
    return SQLITE_OK;
}

/* the WAL methods that look at the file: what has collected is written first */
static int wal_read(sqlite3_file *file, void *data, int amount, sqlite3_int64 offset)
{
    int rc = flush((vfs_file_t *)file);
    return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xRead(REAL(file), data, amount, offset);
}

static int wal_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    vfs_file_t *f = (vfs_file_t *)file;
    int rc = flush(f);
    if (rc != SQLITE_OK)
        return rc;
    f->end = -1;
    return f->real->pMethods->xTruncate(f->real, size);
}

static int wal_sync(sqlite3_file *file, int flags)
{
    int rc = flush((vfs_file_t *)file);
    return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int wal_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    int rc = flush((vfs_file_t *)file);
    return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int wal_file_control(sqlite3_file *file, int op, void *arg)
{
    int rc = flush((vfs_file_t *)file);
    return rc != SQLITE_OK ? rc : REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int wal_close(sqlite3_file *file)
{
    vfs_file_t *f = (vfs_file_t *)file;
    int rc = flush(f);
    free(f->pending);
    f->pending = NULL;
    int closed = f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : closed;
}

/* the rest, for every file: SQLite's own */
static int fwd_close(sqlite3_file *file)
{
    return REAL(file)->pMethods->xClose(REAL(file));
}

static int fwd_read(sqlite3_file *file, void *data, int amount, sqlite3_int64 offset)
{
    return REAL(file)->pMethods->xRead(REAL(file), data, amount, offset);
}

static int fwd_write(sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset)
{
    return REAL(file)->pMethods->xWrite(REAL(file), data, amount, offset);
}

static int fwd_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    return REAL(file)->pMethods->xTruncate(REAL(file), size);
}

static int fwd_sync(sqlite3_file *file, int flags)
{
    return REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int fwd_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    return REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int fwd_lock(sqlite3_file *file, int level)
{
    return REAL(file)->pMethods->xLock(REAL(file), level);
}

static int fwd_unlock(sqlite3_file *file, int level)
{
    return REAL(file)->pMethods->xUnlock(REAL(file), level);
}

static int fwd_check_reserved_lock(sqlite3_file *file, int *out)
{
    return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int fwd_file_control(sqlite3_file *file, int op, void *arg)
{
    return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int fwd_sector_size(sqlite3_file *file)
{
    return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int fwd_device_characteristics(sqlite3_file *file)
{
    return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int fwd_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    return REAL(file)->pMethods->xShmMap(REAL(file), page, size, extend, out);
}

static int fwd_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void fwd_shm_barrier(sqlite3_file *file)
{
    REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int fwd_shm_unmap(sqlite3_file *file, int delete_flag)
{
    return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}

static int fwd_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out)
{
    return REAL(file)->pMethods->xFetch(REAL(file), offset, amount, out);
}

static int fwd_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *page)
{
    return REAL(file)->pMethods->xUnfetch(REAL(file), offset, page);
}

static int vfs_open(sqlite3_vfs *self, const char *name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    (void)self;
    vfs_file_t *f = (vfs_file_t *)file;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || !f->real->pMethods) {
        f->base.pMethods = NULL; /* SQLite closes nothing that did not open */
        return rc;
    }
    /* SQLite's file is as it is, except that its methods are reached through these; the
       methods its version lacks stay missing (iVersion) */
    int version = f->real->pMethods->iVersion;
    if (version > 3)
        version = 3;
    if (version < 1)
        version = 1;
    bool wal = (flags & SQLITE_OPEN_WAL) != 0 && version == 3;
    f->end = -1;
    f->base.pMethods = wal ? &wal_methods : &forward[version];
    return SQLITE_OK;
}

static void init_methods(sqlite3_io_methods *m, int version, bool wal)
{
    *m = (sqlite3_io_methods){.iVersion = version,
                              .xClose = wal ? wal_close : fwd_close,
                              .xRead = wal ? wal_read : fwd_read,
                              .xWrite = wal ? wal_write : fwd_write,
                              .xTruncate = wal ? wal_truncate : fwd_truncate,
                              .xSync = wal ? wal_sync : fwd_sync,
                              .xFileSize = wal ? wal_file_size : fwd_file_size,
                              .xLock = fwd_lock,
                              .xUnlock = fwd_unlock,
                              .xCheckReservedLock = fwd_check_reserved_lock,
                              .xFileControl = wal ? wal_file_control : fwd_file_control,
                              .xSectorSize = fwd_sector_size,
                              .xDeviceCharacteristics = fwd_device_characteristics};
    if (version >= 2) {
        m->xShmMap = fwd_shm_map;
        m->xShmLock = fwd_shm_lock;
        m->xShmBarrier = fwd_shm_barrier;
        m->xShmUnmap = fwd_shm_unmap;
    }
    if (version >= 3) {
        m->xFetch = fwd_fetch;
        m->xUnfetch = fwd_unfetch;
    }
}

static int vfs_delete(sqlite3_vfs *self, const char *name, int sync_dir)
{
    (void)self;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *self, const char *name, int flags, int *out)
{
    (void)self;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *self, const char *name, int n, char *out)
{
    (void)self;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static const char *registered;

static void register_vfs(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs || real_vfs->iVersion < 1)
        return;
    init_methods(&wal_methods, 3, true);
    for (int v = 1; v <= 3; v++)
        init_methods(&forward[v], v, false);
    vfs = *real_vfs; /* time, randomness, sleep, libraries: SQLite's own */
    vfs.szOsFile = (int)sizeof(vfs_file_t) + real_vfs->szOsFile;
    vfs.pNext = NULL;
    vfs.zName = "concerto";
    vfs.xOpen = vfs_open;
    vfs.xDelete = vfs_delete;
    vfs.xAccess = vfs_access;
    vfs.xFullPathname = vfs_full_pathname;
    if (sqlite3_vfs_register(&vfs, 0) == SQLITE_OK)
        registered = vfs.zName;
}

const char *sqlite__vfs(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_vfs);
    return registered;
}
