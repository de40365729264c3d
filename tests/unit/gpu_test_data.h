/* gpu_test_data.h — finds tests/data/gpu/ from a unit test. Meson compiles
 * tests with a source path relative to the build directory (or absolute),
 * and `meson test` runs them there, so the directory of __FILE__ leads to
 * the data. */
#ifndef GPUNODE_GPU_TEST_DATA_H
#define GPUNODE_GPU_TEST_DATA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Path of tests/data/gpu/REL into buf. */
static inline const char *gpu_test_data(const char *rel, char *buf, size_t cap)
{
	const char *file = __FILE__;
	const char *slash = strrchr(file, '/');
	int dir_len = slash ? (int)(slash - file) : 0;
	snprintf(buf, cap, "%.*s%s../data/gpu/%s", dir_len, file, slash ? "/" : "", rel);
	return buf;
}

/* Whole file, NUL-terminated, malloc'd; NULL if unreadable. */
static inline char *gpu_test_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	size_t got = fread(s, 1, (size_t)n, f);
	s[got] = '\0';
	fclose(f);
	return s;
}

#endif
