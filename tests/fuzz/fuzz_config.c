/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the configuration loader (INI file + environment).
 *
 * The input up to the first NUL byte is the file; each further
 * NUL-separated chunk becomes an environment variable ACME_HOOKD_<chunk>.
 * The file is handed over as /proc/self/fd/N of a memfd, so nothing
 * touches the disk. Chunks naming a __FILE indirection are dropped: they
 * would read arbitrary paths of the fuzzing host.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

#define FUZZ_ENV_MAX 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *env[FUZZ_ENV_MAX + 1];
    size_t nenv = 0, file_len, off;
    const uint8_t *nul = memchr(data, 0, size);
    char path[64], err[4096];
    hookd_config_t *cfg;
    int fd;

    file_len = nul ? (size_t)(nul - data) : size;
    fd = memfd_create("hookd-fuzz.ini", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (file_len > 0 && write(fd, data, file_len) != (ssize_t)file_len) {
        close(fd);
        return 0;
    }
    for (off = file_len + 1; nul != NULL && off < size && nenv < FUZZ_ENV_MAX;) {
        const uint8_t *end = memchr(data + off, 0, size - off);
        size_t len = end ? (size_t)(end - (data + off)) : size - off;
        char *v = malloc(len + sizeof("ACME_HOOKD_"));
        if (v == NULL)
            break;
        memcpy(v, "ACME_HOOKD_", 11);
        memcpy(v + 11, data + off, len);
        v[11 + len] = '\0';
        if (strstr(v, "__FILE") != NULL)
            free(v);
        else
            env[nenv++] = v;
        off += len + 1;
    }
    env[nenv] = NULL;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    err[0] = '\0';
    cfg = hookd_config_load(path, env, err, sizeof(err));
    if (cfg != NULL) {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull != NULL) {
            hookd_config_dump(cfg, devnull); /* the dump walks every field */
            fclose(devnull);
        }
        hookd_config_destroy(cfg);
    } else if (err[0] == '\0') {
        abort(); /* a refusal must say why */
    }
    for (size_t i = 0; i < nenv; i++)
        free(env[i]);
    close(fd);
    return 0;
}
