/* SPDX-License-Identifier: MIT */
/*
 * `acme-hookd replay`: send chosen dead letters back to the input topic.
 *
 * Reads the dead-letter topic of the worker's configuration (-c FILE, the
 * same brokers and security settings) from the replay's own consumer group
 * up to the end offsets it found at start, chooses with replay_plan.h, and
 * produces each chosen record to the input topic in a Kafka transaction
 * that also commits the group's dead-letter offsets
 * (send_offsets_to_transaction): a record is sent and its dead-letter
 * offset committed together, or neither. A replay killed at any moment
 * and started again with --resume therefore sends nothing twice (an open
 * transaction of the killed run is aborted when the next one starts with
 * the same transactional.id, and the worker reads committed records only).
 *
 * Exit status: 0 everything selected was sent (or, with --dry-run, would
 * be); 1 some selected dead letters cannot be replayed (each is listed) or
 * the start was refused; 2 usage error; 3 Kafka error (what was not
 * committed is sent again by --resume); 4 interrupted by SIGTERM/SIGINT
 * after the last complete batch (--resume continues).
 */
#ifndef HOOKD_REPLAY_H
#define HOOKD_REPLAY_H

#ifdef __cplusplus
extern "C" {
#endif

/* argv[0] is "replay". Returns the exit status; never calls exit(). */
int hookd_replay_main(int argc, char **argv, char **envp);

#ifdef __cplusplus
}
#endif

#endif /* HOOKD_REPLAY_H */
