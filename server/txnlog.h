/*
 * txnlog.h: the durable, append-only transaction log in dataLogDir.
 *
 * Files are named log.<first zxid as 16 hex digits>. A record is
 *     u32 len | u64 xxh64(zxid . payload) | u64 zxid | payload[len]
 * with zxids strictly increasing across records and files. Appends are buffered; txnlog_sync
 * writes them and fdatasyncs, and only then are they durable (group commit: the caller appends a
 * batch, then syncs once). Files are preallocated with zeros so fdatasync need not update the
 * size; a zero length marks the end. At open, every record is checked: a torn or corrupt tail is
 * reported (file, offset, bytes cut) and cut, never replayed. The log owns its buffers and fds.
 */
#ifndef COORD_TXNLOG_H
#define COORD_TXNLOG_H

#include <stddef.h>
#include <stdint.h>

struct txnlog;

/*
 * Open (creating dir if missing), scan and repair the log. *last_zxid gets the zxid of the last
 * valid record (0 if none). Returns COORD_OK, or COORD_EIO with a message for a person.
 */
int txnlog_open(const char *dir, struct txnlog **out, uint64_t *last_zxid, char *err, size_t errlen);
/*
 * Call cb for every valid record with zxid > after, in order. A non-zero return from cb stops
 * the replay and is returned. Only call before the first append.
 */
int txnlog_replay(struct txnlog *l, uint64_t after,
		  int (*cb)(void *arg, uint64_t zxid, const uint8_t *payload, size_t len), void *arg);
/* Buffer a record; zxid must exceed every zxid appended before. COORD_OK or COORD_ENOMEM. */
int txnlog_append(struct txnlog *l, uint64_t zxid, const void *payload, size_t len);
/*
 * Write what is buffered and fdatasync. COORD_OK, or COORD_ENOSPC / COORD_EIO: then nothing of
 * the batch counts as written, the file is cut back to its last durable end, and the batch stays
 * buffered so a later txnlog_sync may retry it (after space is freed).
 */
int txnlog_sync(struct txnlog *l);
/* Drop buffered, unsynced records (the caller gave up on a failed batch). */
void txnlog_discard(struct txnlog *l);
/* Start a new file at the next append (after a snapshot, so older files can be purged). */
int txnlog_roll(struct txnlog *l);
/* Remove every record with zxid > zxid (a replica's conflicting suffix); durable on return. */
int txnlog_truncate_after(struct txnlog *l, uint64_t zxid);
/* Delete whole files all of whose records have zxid <= upto (they are covered by a snapshot). */
int txnlog_purge(struct txnlog *l, uint64_t upto);
/* Bytes in the current file, zxid range kept (for mntr). */
uint64_t txnlog_first_zxid(const struct txnlog *l);
void txnlog_close(struct txnlog *l);

#endif
