/*
 * check.h: the unit tests' few assertions. A failed CHECK prints file:line and the expression
 * and exits 1, so ctest reports the test as failed.
 */
#ifndef COORD_CHECK_H
#define COORD_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

#define CHECK_EQ(a, b)                                                                    \
	do {                                                                              \
		long long _a = (long long)(a), _b = (long long)(b);                       \
		if (_a != _b) {                                                           \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", \
				__FILE__, __LINE__, #a, _a, #b, _b);                      \
			exit(1);                                                          \
		}                                                                         \
	} while (0)

#define CHECK_STR(a, b)                                                                         \
	do {                                                                                    \
		const char *_a = (a), *_b = (b);                                                \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                        \
			fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", %s == \"%s\"\n", \
				__FILE__, __LINE__, #a, _a ? _a : "(null)", #b, _b ? _b : "(null)"); \
			exit(1);                                                                \
		}                                                                               \
	} while (0)

#define RUN(test)                                   \
	do {                                        \
		fprintf(stderr, "  %s\n", #test);   \
		test();                             \
	} while (0)

#endif
