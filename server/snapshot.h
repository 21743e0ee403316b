/*
 * snapshot.h: snapshot files in dataDir, named snapshot.<zxid as 16 hex digits>.
 *
 * A snapshot is a sequence of records framed like the log's (u32 len | u64 xxh64 | payload),
 * opened by a header (magic "COORDSNP", format version, zxid) and closed by a footer (record
 * count). It is written to a temporary name, fsynced, renamed, and the directory fsynced, so a
 * crash leaves either the old set or the new one. A snapshot is valid only if every record checks
 * and the footer is there; loading picks the newest valid one and reports the ones it skipped.
 * What the records mean is the caller's business (the tree and the session table).
 */
#ifndef COORD_SNAPSHOT_H
#define COORD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

struct snap_writer;

int snap_write_begin(const char *dir, uint64_t zxid, struct snap_writer **out, char *err, size_t errlen);
/* COORD_OK, COORD_ENOSPC or COORD_EIO */
int snap_write_record(struct snap_writer *w, const void *payload, size_t len);
/* Footer, fsync, rename, fsync dir. Frees w whatever the result. */
int snap_write_end(struct snap_writer *w, char *err, size_t errlen);
/* Remove the temporary file and free w. */
void snap_write_abort(struct snap_writer *w);

/*
 * Find the newest valid snapshot and feed its records to cb in order. *zxid gets its zxid, or 0
 * when there is none (then cb is never called and COORD_OK is returned). Invalid snapshots are
 * logged (LOG_WARN, naming file and fault) and skipped. A non-zero return from cb is returned.
 */
int snap_load_newest(const char *dir, uint64_t *zxid,
		     int (*cb)(void *arg, const uint8_t *payload, size_t len), void *arg,
		     char *err, size_t errlen);
/* Keep the newest `keep` snapshots, delete older ones and stale temporaries. Returns the zxid of
 * the oldest kept snapshot (0 if none), so the caller can purge the log below it. */
uint64_t snap_purge(const char *dir, int keep);

#endif
