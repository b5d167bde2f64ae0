/* SPDX-License-Identifier: MIT */
/*
 * Criterion's logging macros for the shim of criterion.h (see there): each
 * prints one line, "[----] " then the printf-style message, to stderr.
 */
#ifndef HOOKD_CRITERION_SHIM_LOGGING_H
#define HOOKD_CRITERION_SHIM_LOGGING_H

#include "criterion.h"

#define cr_log_info(...) crs_log("info", __VA_ARGS__)
#define cr_log_warn(...) crs_log("warn", __VA_ARGS__)
#define cr_log_error(...) crs_log("error", __VA_ARGS__)

#endif
