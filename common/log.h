/*
 * log.h: one-line log records on stderr: "2026-11-25 08:20:02.123 coordd[1234] WARN message".
 *
 * Thread-safe (one write(2) per record). The level threshold and the program name are process-wide.
 */
#ifndef COORD_LOG_H
#define COORD_LOG_H

enum coord_log_level { COORD_LOG_DEBUG = 0, COORD_LOG_INFO = 1, COORD_LOG_WARN = 2, COORD_LOG_ERROR = 3 };

void coord_log_init(const char *prog, int min_level);
void coord_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_DEBUG(...) coord_log(COORD_LOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) coord_log(COORD_LOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) coord_log(COORD_LOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) coord_log(COORD_LOG_ERROR, __VA_ARGS__)

#endif
