/*
 * cluster.h: .cluster, the ensemble as this host sees it now.
 *
 * One row per member: its client address, id, mode (leader, follower, observer, standalone),
 * last zxid, how many entries it is behind the leader (from the leader's view), and health: up
 * (it answered), down (no answer within a short timeout), silent (it answers us, but the leader
 * has not heard from it lately: cut off from the leader). The members are those in the mount's
 * server list and those the ensemble's configuration names. Then the leader, whether a quorum of
 * voting members answers, and the member this mount's session is connected to.
 */
#ifndef COORDFS_CLUSTER_H
#define COORDFS_CLUSTER_H

#include <stddef.h>

#include "fs.h"

/* Ask the members and write the text (malloc'd). Returns 0 or -errno. */
int cluster_text(struct coordfs *fs, char **text, size_t *len);

#endif
